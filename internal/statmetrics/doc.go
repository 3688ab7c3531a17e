// Package statmetrics exports a Stats snapshot as Prometheus metrics read
// when the registry is scraped, so they cost nothing between scrapes:
// packages node and crdtstore describe their counters and gauges with it.
package statmetrics
