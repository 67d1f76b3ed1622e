// Command lobbybench is a load generator for Lobby, or for anything that
// speaks Lobby's seed protocol (GET /ws/{room}, POST /rooms/{room}/broadcast).
//
//	lobbybench [flags] fanout|chat|idle|churn|questionnaire
//	lobbybench compare [flags]
//
// Every scenario is bounded in time and count, prints one JSON line per
// result on stdout, and a readable summary on stderr. Latency is measured
// from a timestamp inside each message. Run it on a core of its own
// (taskset -c 1) and the server on another (taskset -c 0): one server core
// takes about one load-generator core to measure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	raiseFileLimit()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "lobbybench:", err)
		os.Exit(1)
	}
}

// raiseFileLimit lifts the limit on open files to 1<<17 where the process
// may (as root, or under a high enough hard limit): the bigroom and idle
// presets hold 20 000 connections, a socket at each end, and the servers
// compare starts inherit the limit. Where it may not, the Go runtime has
// already raised the soft limit to the hard one, and that must do.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur >= 1<<17 {
		return
	}
	want := syscall.Rlimit{Cur: 1 << 17, Max: max(l.Max, 1<<17)}
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) // refused: see above
}

// config is every scenario's settings.
type config struct {
	url        string
	rooms      int
	subs       int
	rate       float64
	ramp       bool
	step       time.Duration
	factor     float64
	p99Bound   time.Duration
	maxRate    float64
	duration   time.Duration
	payload    int
	conns      int
	settle     time.Duration
	serverPID  int
	conc       int
	churn      float64
	publishers int
	label      string
	// publishToken is the server's publish token (questionnaire).
	publishToken string
	// kind is the questionnaire's kind of question: single or text.
	kind string
	// subURLs, when set, are the servers the fanout's subscribers join,
	// in turn (cluster nodes); publishers use url. Empty means url.
	subURLs []string
}

// memberURL is the server the i-th member joins.
func (c *config) memberURL(i int) string {
	if len(c.subURLs) == 0 {
		return c.url
	}
	return c.subURLs[i%len(c.subURLs)]
}

func flags(name string, stderr io.Writer) (*flag.FlagSet, *config) {
	c := &config{}
	fs := flag.NewFlagSet("lobbybench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8081", "server base URL (WebSocket routes are derived from it)")
	fs.IntVar(&c.rooms, "rooms", 1, "fanout, chat: rooms")
	fs.IntVar(&c.subs, "subs", 1000, "fanout: subscribers per room; chat, bigroom: members per room")
	fs.Float64Var(&c.rate, "rate", 100, "fanout, bigroom: publishes per second in all (ramp: the first step's); chat: messages per second per member")
	fs.BoolVar(&c.ramp, "ramp", false, "fanout: raise the rate by --factor every --step until p99 > --p99 or a loss; report the best step")
	fs.DurationVar(&c.step, "step", 2*time.Second, "fanout --ramp: length of one step")
	fs.Float64Var(&c.factor, "factor", 1.6, "fanout --ramp: rate multiplier per step")
	fs.DurationVar(&c.p99Bound, "p99", 200*time.Millisecond, "fanout --ramp: latency bound a step must keep")
	fs.Float64Var(&c.maxRate, "max-rate", 100_000, "fanout --ramp: stop raising past this many publishes per second")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "fanout (fixed rate), chat, churn, bigroom: how long to run")
	fs.IntVar(&c.payload, "payload", 64, "bytes of padding in each message")
	fs.IntVar(&c.conns, "conns", 1000, "idle: connections to open")
	fs.DurationVar(&c.settle, "settle", 5*time.Second, "idle: wait this long after connecting before reading the server's memory")
	fs.IntVar(&c.serverPID, "server-pid", 0, "server process id: idle reads its RSS, fanout and chat its CPU time (from /proc)")
	fs.IntVar(&c.conc, "concurrency", 50, "churn: clients connecting and closing at once")
	fs.Float64Var(&c.churn, "churn", 5, "bigroom: clients a second that join the room and leave it")
	fs.IntVar(&c.publishers, "publishers", 8, "fanout: HTTP publishers working in parallel")
	fs.StringVar(&c.label, "label", "", "a name for the server, copied into the results")
	fs.StringVar(&c.publishToken, "publish-token", "", "questionnaire: the server's publish token, to create the questionnaire")
	fs.StringVar(&c.kind, "kind", "single", "questionnaire: the kind of question answered, single (an option each) or text (a word each, grouped into a word tally)")
	fs.Func("sub-url", "fanout: comma-separated base URLs the subscribers join in turn, e.g. two cluster nodes (default: --url)", func(v string) error {
		for u := range strings.SplitSeq(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				c.subURLs = append(c.subURLs, u)
			}
		}
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: lobbybench [flags] fanout|chat|idle|churn|questionnaire
       lobbybench compare --help

  fanout  R rooms x N subscribers; HTTP publishes at --rate, or --ramp to
          find the highest rate with p99 under --p99 and no loss
  chat    R rooms x N members, each sending --rate frames per second
  idle    --conns idle connections; with --server-pid, KB of server RSS per connection
  churn   --concurrency clients connecting and closing for --duration
  bigroom one room of --subs members that publishes reach at --rate, quiet
          for half of --duration, then with --churn joins and leaves a second:
          publish p99 and server CPU per frame, quiet and busy
  questionnaire
          --subs participants shown a question all answer at once: answers/s,
          acknowledgement latency, time until the presenter's tally is complete
          (--kind text: a word each, the presenter's word tally)

Flags:
`)
		fs.PrintDefaults()
	}
	return fs, c
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return runCompare(ctx, args[1:], stdout, stderr)
	}
	fs, c := flags("", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("name one scenario")
	}
	res, err := runScenario(ctx, fs.Arg(0), c)
	if err != nil {
		return err
	}
	return report(stdout, stderr, res)
}

func runScenario(ctx context.Context, name string, c *config) (*result, error) {
	var res *result
	var err error
	switch name {
	case "fanout":
		res, err = fanout(ctx, c)
	case "chat":
		res, err = chat(ctx, c)
	case "idle":
		res, err = idle(ctx, c)
	case "churn":
		res, err = churn(ctx, c)
	case "questionnaire":
		res, err = questionnaire(ctx, c)
	case "bigroom":
		res, err = bigroom(ctx, c)
	default:
		return nil, fmt.Errorf("unknown scenario %q: want fanout, chat, idle, churn, bigroom or questionnaire", name)
	}
	if res != nil {
		res.Scenario, res.Label = name, c.label
	}
	return res, err
}

// result is one scenario run, printed as one JSON line.
type result struct {
	Scenario        string  `json:"scenario"`
	Label           string  `json:"label,omitempty"`
	Rooms           int     `json:"rooms,omitempty"`
	Subs            int     `json:"subs,omitempty"`
	Seconds         float64 `json:"seconds"`
	Published       int64   `json:"published,omitempty"`
	Delivered       int64   `json:"delivered,omitempty"`
	Lost            int64   `json:"lost,omitempty"`
	DeliveriesPerS  float64 `json:"deliveries_per_s,omitempty"`
	BestDeliveriesS float64 `json:"best_deliveries_per_s,omitempty"`
	P50ms           float64 `json:"p50_ms,omitempty"`
	P99ms           float64 `json:"p99_ms,omitempty"`
	MaxMs           float64 `json:"max_ms,omitempty"`
	QuietP99ms      float64 `json:"quiet_p99_ms,omitempty"`
	QuietMaxMs      float64 `json:"quiet_max_ms,omitempty"`
	QuietCPUus      float64 `json:"quiet_server_cpu_us_per_frame,omitempty"`
	JoinsPerS       float64 `json:"joins_per_s,omitempty"`
	ServerCPUus     float64 `json:"server_cpu_us_per_delivery,omitempty"`
	Conns           int     `json:"conns,omitempty"`
	KBPerConn       float64 `json:"kb_per_conn,omitempty"`
	CyclesPerS      float64 `json:"cycles_per_s,omitempty"`
	CPUusPerCycle   float64 `json:"server_cpu_us_per_cycle,omitempty"`
	AnswersPerS     float64 `json:"answers_per_s,omitempty"`
	TallyCompleteMs float64 `json:"tally_complete_ms,omitempty"`
	// TallyAfterLastMs is how long after the last answer was acknowledged
	// the presenter had the complete tally (questionnaire).
	TallyAfterLastMs float64  `json:"tally_after_last_answer_ms,omitempty"`
	Kind             string   `json:"kind,omitempty"`
	Errors           int64    `json:"errors,omitempty"`
	Steps            []result `json:"steps,omitempty"`
	Stop             string   `json:"stop,omitempty"`
}

func report(stdout, stderr io.Writer, r *result) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", line)
	fmt.Fprintln(stderr, summary(r))
	return nil
}

func summary(r *result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s:", r.Label, r.Scenario)
	switch presetScenario(r.Scenario) {
	case "fanout", "chat":
		if r.BestDeliveriesS > 0 {
			fmt.Fprintf(&b, " best %.0f deliveries/s (p99 %.1f ms, max %.1f ms) over %d steps; stopped: %s", r.BestDeliveriesS, r.P99ms, r.MaxMs, len(r.Steps), r.Stop)
		} else {
			fmt.Fprintf(&b, " %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, lost %d", r.DeliveriesPerS, r.P50ms, r.P99ms, r.MaxMs, r.Lost)
		}
		if r.ServerCPUus > 0 {
			fmt.Fprintf(&b, ", server CPU %.2f µs/delivery", r.ServerCPUus)
		}
	case "bigroom":
		b.WriteString(r.bigroomSummary())
	case "idle":
		fmt.Fprintf(&b, " %d connections", r.Conns)
		if r.KBPerConn > 0 {
			fmt.Fprintf(&b, ", %.1f KB server RSS per connection", r.KBPerConn)
		}
	case "questionnaire":
		fmt.Fprintf(&b, " %d participants answering a %s question at once: %.0f answers/s, acknowledged p50 %.1f ms, p99 %.1f ms; presenter's tally complete after %.1f ms, %.1f ms after the last answer",
			r.Subs, r.Kind, r.AnswersPerS, r.P50ms, r.P99ms, r.TallyCompleteMs, r.TallyAfterLastMs)
	case "churn":
		fmt.Fprintf(&b, " %.0f connect/close cycles/s", r.CyclesPerS)
		if r.CPUusPerCycle > 0 {
			fmt.Fprintf(&b, ", server CPU %.1f µs/cycle", r.CPUusPerCycle)
		}
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, " (%d errors)", r.Errors)
	}
	return b.String()
}
