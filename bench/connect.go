package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// connectAll dials the connections of a cluster of n peers: every pair, or
// with star only publisher (0) ↔ each subscriber. Participant i dials j < i.
// At most 8 dials run at once.
func connectAll(ctx context.Context, n int, star bool, dial func(ctx context.Context, i, j int) error) error {
	type pair struct{ i, j int }
	var pairs []pair
	for i := 1; i < n; i++ {
		for j := 0; j < i; j++ {
			if star && j != 0 {
				continue
			}
			pairs = append(pairs, pair{i, j})
		}
	}
	errs := make([]error, len(pairs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for k, p := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := dial(ctx, p.i, p.j); err != nil {
				errs[k] = fmt.Errorf("connect %d→%d: %w", p.i, p.j, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// parallel runs f(0..n-1) concurrently and waits for all.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}
