//go:build !unix

package main

// dropPrivileges is a no-op where there are no uids to drop to.
func dropPrivileges(env map[string]string) error { return nil }
