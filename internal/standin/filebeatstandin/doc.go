// Package filebeatstandin is a test stand-in for filebeat as Wazuh ships it (filebeat-oss
// 7.10.2 with Wazuh's module), not product: filebeat cannot be installed here, and
// socflow must be tested against a shipper that behaves like it.
//
// It takes filebeat's command line (`filebeat -e -c FILE --path.home H --path.data D`,
// `filebeat test config`, `filebeat version`, --path.*, --strict.perms, -E) and
// filebeat.yml with libbeat's rules: dotted keys, ${VAR} and ${VAR:default} from the
// environment (a missing one is "missing field accessing '<setting>'", exit 1), strict
// permissions on the config file, the module registry under path.home/module (the Wazuh
// module's alerts and archives filesets and their manifest's var defaults), filebeat.inputs
// of type log or filestream, and output.elasticsearch (hosts, protocol, path, username,
// password, ssl.certificate_authorities, ssl.certificate/key, ssl.verification_mode,
// index, bulk_max_size, backoff.*). setup.*, logging.* and other sections are accepted
// and ignored.
//
// A run locks path.data, reads each file from its registry offset (the start, on first
// sight), and ships each line with the _bulk API; only acknowledged lines move the
// registry, so a restart does not ship them again. Connection, TLS and HTTP errors are
// logged in filebeat's words ("Failed to connect to backoff(elasticsearch(URL)): Get
// \"URL\": x509: certificate signed by unknown authority", "401 Unauthorized: ...") and
// retried with filebeat's backoff for ever; filebeat never exits on them. What the
// Wazuh module's ingest pipeline does in the indexer (alert fields at the root,
// @timestamp from the alert, index wazuh-alerts-4.x-<day>) the stand-in does before
// sending. Timings default to filebeat's (Timings, RealTimings).
package filebeatstandin
