package wazuhstandin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// startAlert is analysisd's first alert: rule 502 "Wazuh server started." for
// the "ossec: Manager started." event, appended to logs/alerts/alerts.json
// when <jsonout_output> is on, so that a shipper has something to send.
func (d *daemon) startAlert() error {
	if !d.m.JSONOut {
		return nil
	}
	host, _ := os.Hostname()
	now := time.Now()
	alert := map[string]any{
		"timestamp": now.Format("2006-01-02T15:04:05.000-0700"),
		"rule": map[string]any{"level": 3, "description": "Wazuh server started.", "id": "502", "firedtimes": 1,
			"mail": false, "groups": []string{"ossec"}, "pci_dss": []string{"10.6.1"}, "gpg13": []string{"10.1"},
			"gdpr": []string{"IV_35.7.d"}, "hipaa": []string{"164.312.b"}, "nist_800_53": []string{"AU.6"},
			"tsc": []string{"CC7.2", "CC7.3"}},
		"agent":    map[string]any{"id": "000", "name": host},
		"manager":  map[string]any{"name": host},
		"id":       fmt.Sprintf("%d.%d", now.Unix(), os.Getpid()),
		"full_log": "ossec: Manager started.",
		"decoder":  map[string]any{"name": "ossec"},
		"location": "wazuh-monitord",
	}
	if d.m.Cluster.Running() {
		alert["cluster"] = map[string]any{"name": d.m.Cluster.Name, "node": d.m.Cluster.NodeName}
	}
	line, err := json.Marshal(alert)
	if err != nil {
		return err
	}
	path := filepath.Join(d.home, alertsRel)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("(1103): Could not open file '%s' due to [%v].", alertsRel, err)
	}
	defer f.Close()
	_, err = f.Write(append(line, '\n'))
	return err
}
