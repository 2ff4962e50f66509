// Package compose holds the structural tests of silt's local stack:
// docker-compose.yml, the Prometheus and Grafana files under deploy/compose
// and the Dockerfile. They parse the files and check that the pieces agree
// with each other and with silt's flags, so a broken stack is caught without
// a Docker engine.
package compose
