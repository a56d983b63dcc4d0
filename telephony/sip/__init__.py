"""The SIP side of Rapport's own PBX (deploy/kamailio/kamailio.cfg, docs/telephony.md "Kamailio
(tested)"): the softphone credentials an agent's browser registers with."""
