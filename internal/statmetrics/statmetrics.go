package statmetrics

import "github.com/prometheus/client_golang/prometheus"

// Metric is one value of a snapshot S.
type Metric[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(S) float64
}

// Counter is a counter read from S (name should end in _total).
func Counter[S any](name, help string, labels prometheus.Labels, v func(S) uint64) Metric[S] {
	return Metric[S]{prometheus.NewDesc(name, help, nil, labels), prometheus.CounterValue,
		func(s S) float64 { return float64(v(s)) }}
}

// Gauge is a gauge read from S.
func Gauge[S any](name, help string, labels prometheus.Labels, v func(S) int) Metric[S] {
	return Metric[S]{prometheus.NewDesc(name, help, nil, labels), prometheus.GaugeValue,
		func(s S) float64 { return float64(v(s)) }}
}

// Collector takes one snapshot per scrape and reports its metrics.
type Collector[S any] struct {
	stats   func() S
	metrics []Metric[S]
}

// NewCollector returns a collector of metrics, each read from stats().
func NewCollector[S any](stats func() S, metrics ...Metric[S]) *Collector[S] {
	return &Collector[S]{stats: stats, metrics: metrics}
}

func (c *Collector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c *Collector[S]) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st))
	}
}
