// Figures in words, as the wall shows them.

// A total of seconds in words: "45 s", "20 min", "1 h 10 min".
export function spoken(seconds) {
  if (seconds < 60) return seconds + " s";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return minutes + " min";
  return Math.floor(minutes / 60) + " h" + (minutes % 60 ? " " + (minutes % 60) + " min" : "");
}

export function percent(ratio) {
  return ratio === null || ratio === undefined ? "–" : Math.round(ratio * 100) + "%";
}

// Elapsed time as a clock reads: "4:05", "1:02:03".
export function duration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => (n < 10 ? "0" : "") + n;
  return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
}

export function clockTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}
