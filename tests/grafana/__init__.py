"""Tests of the Grafana artefacts and the production deployment files."""
