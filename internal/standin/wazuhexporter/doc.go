// Package wazuhexporter is a test stand-in for the Prometheus exporter of the Wazuh
// server rock (not product): the charm's rock ships rock/prometheus_exporter, a Python
// program forked from pyToshka/wazuh-prometheus-exporter (prometheus_client, requests),
// which cannot run here, and socflow must be tested against an exporter that behaves
// like it.
//
// What it copies, from that program's main.py and wazuh_metrics_collector.py:
//
//   - Configuration by environment only: WAZUH_PROTOCOL (default https), WAZUH_API_HOST,
//     WAZUH_API_PORT, WAZUH_API_USERNAME, WAZUH_API_PASSWORD, EXPORTER_PORT (default
//     5000), EXPORTER_LOG_LEVEL (default INFO). WAZUH_API_PORT unset or not a number is
//     an uncaught Python error (traceback, exit 1); any other of the four unset or empty
//     is two "critical" log lines and exit 2.
//   - Logs as json_logging writes them, one JSON object a line on stderr ("msg",
//     "level" in lower case, "logger": "wazuh-exporter"); uncaught errors as Python
//     tracebacks.
//   - Start: "Starting Wazuh prometheus exporter", the HTTP server on 0.0.0.0:EXPORTER_PORT
//     (a port in use: OSError traceback, exit 1), "Start collector", then one full
//     collection, which is how prometheus_client registers a collector without
//     describe(). A login the API refuses fails that collection with KeyError: 'data'
//     (the exporter reads data.token from the 401 body), an API that does not answer
//     with requests' ConnectionError: either way a traceback and exit 1, a second or so
//     after the port opened. Until then /metrics serves the default registry only.
//   - Every GET of /metrics (any path, as prometheus_client serves them) logs in again
//     with basic auth (certificate not verified) and makes the same nine reads, in the
//     same order: /overview/agents, /manager/stats/hourly, /manager/stats?pretty=true,
//     /manager/stats/remoted, /manager/logs, /manager/stats/analysisd,
//     /manager/configuration/validation, /cluster/healthcheck, /. A read answered with
//     another status than 200 is logged as a warning ("Got response http code N,
//     response body: b'…'") and counts as empty, as in the original. A failed login, a
//     lost API, or an analysisd item lacking one of the fields the original indexes
//     fails the whole read: HTTP 500 "A server error occurred.  Please contact the
//     administrator." and a traceback on stderr; the process keeps running.
//   - Metric names and labels of the text exposition, including the original's
//     oddities (summary families whose samples carry other names, info families with
//     one label per sample): wazuh_total_agent (wazuh_agents_count{node_name}),
//     wazuh_total_group, wazuh_agent_status (wazuh_active_agents, wazuh_disconnected_agents,
//     wazuh_never_connected_agents, wazuh_pending_agents, wazuh_total_agents),
//     wazuh_agent_version, last_registered_agent_info, manager_stats_hourly
//     (total_affected_items, total_failed_items), nodes_healthcheck_info{node_name,…},
//     wazuh_api_info, manager_stats_total (total_alerts_hour_H…), manager_stats_remoted,
//     last_logs_info, analysisd_stats{analysisd_stats}, wazuh_validate_configuration_info{status,node_name}.
//
// Assumptions: the process collectors of prometheus_client (process_*, python_gc_*)
// are reduced to python_info; SKIP_* variables are honoured for the families they
// skip; a login is made per read, never cached, as in the original.
package wazuhexporter
