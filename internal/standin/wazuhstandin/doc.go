// Package wazuhstandin is a test stand-in for the Wazuh manager 4.11 (not
// product): one binary (internal/standin/wazuh) installed as
// <home>/bin/wazuh-control, where <home> plays /var/ossec. It honours the
// parts of the manager's contract socflow depends on, no kinder than the real
// program, on machines where the manager cannot be installed.
//
// # wazuh-control
//
// start, stop, restart, reload, status and info behave as src/init/wazuh-server.sh
// of 4.x: the start-script-lock directory; the configuration test of every
// daemon in start order (SDAEMONS) before anything is stopped, the first
// refusal printing "<daemon>: Configuration error. Exiting" and exiting 1 with
// the running daemons untouched; "Started <daemon>..." per daemon, the closing
// "sleep 2" and "Completed."; reload is restart without wazuh-execd ("wazuh-execd
// already running..."); status exits 1 when any daemon is down, as the real
// one does on every stock manager (clusterd, maild, csyslogd ... are down).
// The daemons are this same binary started under their names
// (argv[0] <home>/bin/wazuh-apid, ...), detached (own session, stdio to
// logs/ossec.log). Each writes var/run/<daemon>-<pid>.pid once initialised and
// removes it on SIGTERM; killed with -9 it leaves it, and status/start remove
// it as pstatus does ("<daemon>: Process N not used by Wazuh, removing...").
// The optional daemons exit at once when their section is absent, with the real
// "Clean exit" lines; maild, clusterd and authd are skipped as the script skips
// them. The .start, .failed and .restart flags feed GET /manager/status.
//
// # Configuration checks (ASSUMPTIONS)
//
// ossec.conf is read by a port of os_xml's behaviour (osxml.go), so errors
// carry its "XMLERR: ..." texts and line numbers. Which daemon refuses first
// follows the real order: wazuh-apid tests only api.yaml ("Configuration not
// valid. ERROR: ..."); wazuh-csyslogd is the first daemon reading ossec.conf, so
// a malformed file is reported by it as
// "wazuh-csyslogd: ERROR: (1226): Error reading XML file 'etc/ossec.conf': XMLERR: ... (line N)."
// and "... CRITICAL: (1202): Configuration error at 'etc/ossec.conf'." on
// stderr (as issue wazuh/wazuh#8361 shows for 4.3). The C-level <cluster> checks
// (Read_Cluster: node type, empty names) are reported by wazuh-analysisd, the
// Python ones (key of exactly 32 alphanumerics, port range, reserved or missing
// <nodes>) by wazuh-clusterd, which prints only "Configuration error. Exiting"
// and logs "Error 3004 - Error in cluster configuration: ..." to
// logs/cluster.log, as the real clusterd -t does.
//
// # Ports and deviations
//
// Ports come from ossec.conf (<remote><port> 1514, <auth><port> 1515,
// <cluster><port> 1516) and api.yaml (port 55000, host). Every "all addresses"
// spelling (0.0.0.0, ::, empty) is bound as 127.0.0.1: the stand-in runs on
// shared test machines. Extension: <nodes><node> may be "host:port", so two
// nodes share one machine. remoted accepts and drops agent connections. authd
// speaks TLS (etc/sslmanager.cert, generated when missing), checks
// etc/authd.pass when <use_password>yes and answers "OSSEC K:'...'"; on a worker
// it does not listen (no forwarding of enrolments to the master is modelled).
//
// # Cluster
//
// Messages are framed (counter, length, 12-byte command) and sealed with
// Fernet keyed by the 32 characters of <key>, as the real cluster does. A
// worker's hello under another key fails the HMAC: the master logs "Could not
// decrypt message from <ip>: Error 3025 - Could not decrypt message" and drops
// the connection; the worker logs "The master closed the connection" and "The
// connection has been closed. Reconnecting in 10 seconds.", or "Could not connect
// to master. Trying again in 10 seconds." when nothing listens, and retries
// every ClusterRetry for ever. ASSUMPTION: the exact master-side wording of a
// refused hello is not documented; ours names the 3025 error. The API asks
// clusterd over queue/cluster/c-internal.sock; GET /cluster/nodes on the master
// lists itself and the joined workers, on a worker the master's list (error
// 3023 while not joined); without a running clusterd, error 3013.
//
// # API
//
// HTTPS with a self-signed certificate generated at first start into
// api/configuration/ssl/server.{crt,key} and kept afterwards. ES512 JWTs (900 s)
// from GET|POST /security/user/authenticate; the real 401 bodies ("Invalid
// credentials", "No authorization token provided"); max_login_attempts and
// block_time (error 6000), max_request_per_minute (6001); unknown query
// parameters refused as connexion's strict validation does. A password change or
// a role link revokes the user's tokens up to that second, and, as the real
// TokenManager compares whole seconds, a token issued in the same second is
// refused too. The user database is in memory and resets to factory on every
// start (users wazuh/wazuh and wazuh-wui/wazuh-wui, administrators, ids 1 and 2;
// new users from id 100; roles 1 administrator, 2 readonly, 3 users_admin,
// 4 agents_readonly, 5 agents_admin, 6 cluster_readonly, 7 cluster_admin, the
// order of rbac/default/roles.yaml). ASSUMPTIONS: policy ids in role objects are
// placeholders; RBAC is reduced to the actions the served endpoints need; a
// worker's API keeps its own users (the real one forwards security calls to the
// master); GET /manager/stats reads stats/totals/... and answers error 1308
// without it, as a fresh manager does during its first hour.
//
// # Alerts and timings
//
// wazuh-analysisd appends rule 502 "Wazuh server started." to
// logs/alerts/alerts.json at every start when <jsonout_output> is on (every
// node, as each real analysisd alerts). Timings come from WAZUH_STANDIN_*
// variables (Timings), the real figures by default: ≈ 9 s per start, the API
// port opening 3 s after its pid file, a 10 s cluster retry.
package wazuhstandin
