package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A preset is one scenario of an interleaved comparison, with the settings
// the performance goals are stated in.
type preset struct {
	name   string
	metric string // the result field compared; higher is better unless lower
	lower  bool
	set    func(c *config)
	value  func(r *result) float64
}

func presets(idleConns int) []preset {
	return []preset{
		{name: "fanout-ramp", metric: "best deliveries/s (1 room x 1000, p99 < 200 ms, no loss)",
			set: func(c *config) {
				c.rooms, c.subs, c.ramp, c.rate, c.step, c.factor, c.p99Bound = 1, 1000, true, 50, 2*time.Second, 1.6, 200*time.Millisecond
				c.publishers = 32
			},
			value: func(r *result) float64 { return r.BestDeliveriesS }},
		{name: "fanout-fixed", metric: "server CPU µs per delivery (100 rooms x 20, 20 000 deliveries/s)", lower: true,
			set: func(c *config) {
				c.rooms, c.subs, c.rate, c.duration = 100, 20, 1000, 10*time.Second
			},
			value: func(r *result) float64 { return r.ServerCPUus }},
		{name: "idle", metric: fmt.Sprintf("server RSS KB per connection (%d idle)", idleConns), lower: true,
			set: func(c *config) {
				c.conns, c.subs, c.settle = idleConns, 1000, 5*time.Second
			},
			value: func(r *result) float64 { return r.KBPerConn }},
		{name: "chat", metric: "delivery p99 ms (200 rooms x 5, every member sends 1/s)", lower: true,
			set: func(c *config) {
				c.rooms, c.subs, c.rate, c.duration = 200, 5, 1, 10*time.Second
			},
			value: func(r *result) float64 { return r.P99ms }},
		{name: "bigroom", metric: "publish p99 ms while 10 clients/s join and leave (1 room x 5 000, 10 publishes/s)", lower: true,
			set: func(c *config) {
				c.subs, c.rate, c.churn, c.duration = 5000, 10, 10, 20*time.Second
			},
			value: func(r *result) float64 { return r.P99ms }},
		{name: "churn", metric: "connect/close cycles per second (50 at once)",
			set: func(c *config) {
				c.conc, c.duration, c.rooms = 50, 10*time.Second, 50
			},
			value: func(r *result) float64 { return r.CyclesPerS }},
	}
}

// runCompare runs each preset against two servers, interleaved (A B A B),
// each server started fresh for each run, pinned to CPU 0 with GOMAXPROCS=1,
// and prints the medians and their ratio.
func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lobbybench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	aCmd := fs.String("a", "", `server A's command; --addr 127.0.0.1:<port> is appended (e.g. "./lobby --rate -1 --connect-rate -1 --log-level warn")`)
	bCmd := fs.String("b", "", `server B's command, likewise (e.g. "./baseline")`)
	aName := fs.String("a-name", "lobby", "server A's name in the results")
	bName := fs.String("b-name", "baseline", "server B's name in the results")
	cCmd := fs.String("c", "", `an optional third server's command, compared with A too (e.g. "./baseline --batched")`)
	cName := fs.String("c-name", "batched", "server C's name in the results")
	reps := fs.Int("reps", 3, "runs of each server per scenario")
	only := fs.String("scenarios", "fanout-ramp,fanout-fixed,chat,idle,churn,bigroom", "presets to run")
	idleConns := fs.Int("idle-conns", 19000, "connections in the idle preset")
	cpu := fs.String("server-cpu", "0", "CPU list to pin the servers to with taskset (empty: no pinning)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: lobbybench compare -a CMD -b CMD [flags]\n\nRuns each scenario preset against servers A and B interleaved, and prints medians and A/B ratios.\nRun it pinned to another CPU than the servers: taskset -c 1 lobbybench compare ...\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *aCmd == "" || *bCmd == "" {
		fs.Usage()
		return errors.New("compare needs -a and -b")
	}
	servers := []struct{ name, cmd string }{{*aName, *aCmd}, {*bName, *bCmd}}
	if *cCmd != "" {
		servers = append(servers, struct{ name, cmd string }{*cName, *cCmd})
	}
	all := presets(*idleConns)
	var chosen []preset
	for _, p := range all {
		if slices.Contains(strings.Split(*only, ","), p.name) {
			chosen = append(chosen, p)
		}
	}
	values := map[string]map[string][]float64{}
	for rep := range *reps {
		for _, p := range chosen {
			for _, srv := range servers {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				res, err := runOne(ctx, srv.cmd, *cpu, p)
				if err != nil {
					return fmt.Errorf("%s %s run %d: %w", srv.name, p.name, rep+1, err)
				}
				res.Label = srv.name
				res.Scenario = p.name
				if err := report(stdout, stderr, res); err != nil {
					return err
				}
				if values[p.name] == nil {
					values[p.name] = map[string][]float64{}
				}
				values[p.name][srv.name] = append(values[p.name][srv.name], p.value(res))
			}
		}
	}
	fmt.Fprintf(stderr, "\n%-13s | %-62s", "scenario", "metric")
	for _, srv := range servers {
		fmt.Fprintf(stderr, " | %12s", srv.name)
	}
	for _, srv := range servers[1:] {
		fmt.Fprintf(stderr, " | %s/%s", *aName, srv.name)
	}
	fmt.Fprintln(stderr)
	for _, p := range chosen {
		a := median(values[p.name][*aName])
		line := map[string]any{"compare": p.name, "metric": p.metric, *aName: a, "reps": *reps}
		fmt.Fprintf(stderr, "%-13s | %-62s | %12.2f", p.name, p.metric, a)
		var ratios []float64
		for _, srv := range servers[1:] {
			b := median(values[p.name][srv.name])
			fmt.Fprintf(stderr, " | %12.2f", b)
			line[srv.name] = b
			ratio := 0.0
			if b != 0 {
				ratio = a / b
			}
			ratios = append(ratios, ratio)
			line["ratio_"+srv.name] = ratio
		}
		for _, r := range ratios {
			fmt.Fprintf(stderr, " | %.2f", r)
		}
		fmt.Fprintln(stderr)
		out, _ := json.Marshal(line)
		fmt.Fprintf(stdout, "%s\n", out)
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runOne starts a server, runs one preset against it, and stops it.
func runOne(ctx context.Context, command, cpu string, p preset) (*result, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv := append(strings.Fields(command), "--addr", addr)
	if cpu != "" {
		argv = append([]string{"taskset", "-c", cpu}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q: %w", command, err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if err := waitListening(ctx, addr, 30*time.Second); err != nil {
		return nil, err
	}
	_, c := flags("", io.Discard)
	c.url, c.serverPID, c.payload = "http://"+addr, cmd.Process.Pid, 64
	p.set(c)
	return runScenario(ctx, presetScenario(p.name), c)
}

func presetScenario(name string) string {
	name, _, _ = strings.Cut(name, "-")
	return name
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server did not listen on %s within %v", addr, limit)
}
