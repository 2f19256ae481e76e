package configrepo

import "path/filepath"

// SessionFiles exposes a session's key and known_hosts files, so that tests can make
// git's ssh meet what Open's check did not (a server whose key changed in between).
func SessionFiles(s *Session) (key, knownHosts string) {
	return filepath.Join(s.dir, "key"), filepath.Join(s.dir, "known_hosts")
}
