// Dates as the console shows them.

export function parseDate(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return isNaN(date.getTime()) ? null : date;
}

export function formatDay(iso) {
  const date = parseDate(iso);
  if (!date) return "";
  const options = { day: "numeric", month: "short" };
  if (date.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
  return date.toLocaleDateString("en-GB", options);
}

export function formatTime(iso) {
  const date = parseDate(iso);
  return date ? date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }) : "";
}
