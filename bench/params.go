package main

import "time"

// Params sizes every scenario. fullParams is what BENCHMARKS.md reports;
// quickParams is the CI smoke run (under a minute for four systems, N=5).
type Params struct {
	// Scenario 1: latency at a modest pace.
	LatencySize int           `json:"latency_size"`
	LatencyRate float64       `json:"latency_rate"`
	LatencyFor  time.Duration `json:"latency_duration_ns"`

	// Scenario 2: highest rate with 100 % delivery. First one unpaced run
	// of up to ThroughputCount messages (at most ThroughputFor); if every
	// subscriber got everything, the system's own flow control found the
	// rate. Otherwise up to SearchTrials paced runs of SearchFor each
	// search the offered rate between a lossless floor and the lossy rate.
	Sizes           []int         `json:"sizes"`
	ThroughputCount map[int]int   `json:"throughput_count"`
	ThroughputFor   time.Duration `json:"throughput_limit_ns"`
	SearchTrials    int           `json:"search_trials"`
	SearchFor       time.Duration `json:"search_trial_ns"`

	// Scenario 3: unpaced bursts, BurstCount messages per size, publishing
	// stopped after BurstFor in any case.
	BurstCount map[int]int   `json:"burst_count"`
	BurstFor   time.Duration `json:"burst_limit_ns"`

	// Waiting for deliveries after publishing: give up after DrainIdle
	// without any delivery, or after DrainMax in all.
	DrainIdle time.Duration `json:"drain_idle_ns"`
	DrainMax  time.Duration `json:"drain_max_ns"`

	// Warmup messages are sent (and awaited) after a cluster opens.
	Warmup int `json:"warmup"`

	// Store scenarios (4–8), run at N = StoreN only. ValueSize-byte values.
	StoreN    int `json:"store_n"`
	ValueSize int `json:"store_value_size"`
	// 4: VisibleKeys Sets one after the other (each awaited on every
	// other participant) after VisibleWarmup unrecorded ones.
	VisibleKeys   int `json:"visible_keys"`
	VisibleWarmup int `json:"visible_warmup"`
	// 5–7: the store of StoreKeys keys, written unpaced on participant 0
	// (scenario 5's Sets/s), then joined (6) and reconnected to after
	// Changed keys changed (7).
	StoreKeys int `json:"store_keys"`
	Changed   int `json:"reconnect_changed"`
	// 8: MemKeys keys of 10 bytes with MemValueSize-byte values on one
	// participant, then all deleted.
	MemKeys      int `json:"mem_keys"`
	MemValueSize int `json:"mem_value_size"`
	// MemIdle is how long the memory is left to settle before each
	// reading (e.g. pub/sub messages kept a few heartbeats for gossip).
	MemIdle time.Duration `json:"mem_idle_ns"`
	// StoreWait bounds each wait of the store scenarios (replicas applying
	// a load, a join, a reconnect).
	StoreWait time.Duration `json:"store_wait_ns"`

	// Calls scenarios (suite_calls.go), run at N = CallsN only.
	CallsN int `json:"calls_n"`
	// request: RequestWarmup unrecorded requests, then RequestRate
	// requests/s of RequestSize bytes (the reply is as long) for
	// RequestFor, one at a time.
	RequestSize   int           `json:"request_size"`
	RequestRate   float64       `json:"request_rate"`
	RequestFor    time.Duration `json:"request_duration_ns"`
	RequestWarmup int           `json:"request_warmup"`
	// request-rate: LoadRate requests/s for LoadFor from one requester,
	// at most LoadConcurrency outstanding; each request times out after
	// RequestTimeout.
	LoadRate        float64       `json:"request_load_rate"`
	LoadFor         time.Duration `json:"request_load_duration_ns"`
	LoadConcurrency int           `json:"request_load_concurrency"`
	RequestTimeout  time.Duration `json:"request_timeout_ns"`
	// queue: QueueCount messages of 256 B published unpaced (stopped
	// after QueueFor in any case) to a queue group of CallsN−1 members.
	QueueCount int           `json:"queue_count"`
	QueueFor   time.Duration `json:"queue_limit_ns"`
}

const (
	small = 256
	large = 64 << 10
)

func fullParams() Params {
	return Params{
		LatencySize: small, LatencyRate: 1000, LatencyFor: 10 * time.Second,
		Sizes:           []int{small, large},
		ThroughputCount: map[int]int{small: 400_000, large: 6_000},
		ThroughputFor:   4 * time.Second,
		SearchTrials:    5,
		SearchFor:       1500 * time.Millisecond,
		BurstCount:      map[int]int{small: 100_000, large: 2_000},
		BurstFor:        10 * time.Second,
		DrainIdle:       time.Second,
		DrainMax:        10 * time.Second,
		Warmup:          200,
		StoreN:          5,
		ValueSize:       100,
		VisibleKeys:     10_000,
		VisibleWarmup:   200,
		StoreKeys:       100_000,
		Changed:         10,
		MemKeys:         1_000_000,
		MemValueSize:    16,
		MemIdle:         6 * time.Second,
		StoreWait:       60 * time.Second,
		CallsN:          5,
		RequestSize:     small,
		RequestRate:     1000,
		RequestFor:      5 * time.Second,
		RequestWarmup:   500,
		LoadRate:        10_000,
		LoadFor:         5 * time.Second,
		LoadConcurrency: 64,
		RequestTimeout:  2 * time.Second,
		QueueCount:      100_000,
		QueueFor:        20 * time.Second,
	}
}

func quickParams() Params {
	return Params{
		LatencySize: small, LatencyRate: 1000, LatencyFor: 2 * time.Second,
		Sizes:           []int{small, large},
		ThroughputCount: map[int]int{small: 50_000, large: 600},
		ThroughputFor:   time.Second,
		SearchTrials:    2,
		SearchFor:       400 * time.Millisecond,
		BurstCount:      map[int]int{small: 20_000, large: 300},
		BurstFor:        1500 * time.Millisecond,
		DrainIdle:       300 * time.Millisecond,
		DrainMax:        3 * time.Second,
		Warmup:          50,
		StoreN:          5,
		ValueSize:       100,
		VisibleKeys:     1_000,
		VisibleWarmup:   50,
		StoreKeys:       20_000,
		Changed:         10,
		MemKeys:         100_000,
		MemValueSize:    16,
		StoreWait:       20 * time.Second,
		CallsN:          5,
		RequestSize:     small,
		RequestRate:     1000,
		RequestFor:      time.Second,
		RequestWarmup:   100,
		LoadRate:        10_000,
		LoadFor:         time.Second,
		LoadConcurrency: 64,
		RequestTimeout:  2 * time.Second,
		QueueCount:      20_000,
		QueueFor:        5 * time.Second,
	}
}
