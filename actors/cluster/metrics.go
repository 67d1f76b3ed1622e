package cluster

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of bridge traffic, the values of the kind label.
const (
	kindRoom     = "room"
	kindPresence = "presence"
	kindDirect   = "direct"
)

// kindOf says what a subject carries.
func kindOf(subject string) string {
	switch {
	case strings.HasPrefix(subject, subjectRoom):
		return kindRoom
	case strings.HasPrefix(subject, "lobby.direct."), strings.HasPrefix(subject, "lobby.reply."):
		return kindDirect
	}
	return kindPresence
}

// metrics are a Broker's Prometheus metrics; the transport registers them
// with its own (Collectors).
type metrics struct {
	in, out         *prometheus.CounterVec
	publishSeconds  prometheus.Histogram
	deliveryDelay   prometheus.Histogram
	publishFailures prometheus.Counter
	storeFull       prometheus.Counter
	casRetries      prometheus.Counter
	publishRetries  prometheus.Counter
	tailRestarts    prometheus.Counter
	// tailPaused counts the seconds the tail waited for its rooms;
	// behindTotal the times the node turned unready for its lag.
	tailPaused    prometheus.Counter
	behindTotal   prometheus.Counter
	followRepairs prometheus.Counter
	// consumersRefused counts consumers NATS refused for its limit.
	consumersRefused prometheus.Counter
	connected        prometheus.Gauge
	lag, lagSeconds  prometheus.GaugeFunc
	follows          prometheus.GaugeFunc
	leader           prometheus.GaugeFunc
}

func newMetrics(b *Broker) *metrics {
	m := &metrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobby_bridge_messages_in_total", Help: "Messages the node received from NATS, by kind: room (stream deliveries), presence, direct.",
		}, []string{"kind"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobby_bridge_messages_out_total", Help: "Messages the node sent to NATS, by kind: room (stored in the stream), presence, direct.",
		}, []string{"kind"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lobby_bridge_publish_seconds",
			Help:    "Time from a room message's publish to the stream's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 12),
		}),
		deliveryDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lobby_bridge_delivery_delay_seconds",
			Help:    "Time from the stream taking a room message to this node's consumer handing it to its rooms: how far behind the node was when it delivered it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_bridge_publish_failures_total", Help: "Room messages not stored: NATS unreachable, the queue full, or no acknowledgement in time.",
		}),
		storeFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_store_full_total", Help: "Room messages refused because the store (the disk under --data-dir, or JetStream's limit) is full: answered 503 store_full.",
		}),
		casRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_bridge_append_retries_total", Help: "Appends numbered again because another node appended to the same room first.",
		}),
		publishRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_bridge_publish_retries_total", Help: "Attempts to store a room message made again (same message id) after no answer: a stream leader lost, an election.",
		}),
		tailRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_bridge_tail_restarts_total", Help: "Times the node's consumer of the stream was made anew because it delivered nothing while the stream took messages past it.",
		}),
		tailPaused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_bridge_tail_paused_seconds_total", Help: "Seconds the node's consumer of the stream waited for a room to take the messages it holds (backpressure: the node reads the stream no faster than its rooms hand it on).",
		}),
		behindTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_bridge_behind_total", Help: "Times the node turned unready because the oldest stream message it had not delivered was older than --max-stream-lag.",
		}),
		followRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_bridge_follow_repairs_total", Help: "Times a room followed here read messages the stream's tail had passed before the room's start (a look-up answered by a stream leader still catching up).",
		}),
		consumersRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_nats_consumers_refused_total", Help: "JetStream consumers NATS refused because its limit of consumers is reached.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lobby_nats_connected", Help: "1 while the node is connected to NATS, else 0.",
		}),
		lag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lobby_bridge_stream_lag", Help: "Messages stored in the stream and not yet delivered to this node's rooms (the stream's last sequence, probed every second, less its consumer's last delivered).",
		}, func() float64 { return float64(b.Lag().Messages) }),
		lagSeconds: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lobby_bridge_stream_lag_seconds", Help: "Age of the oldest stream message not yet delivered to this node's rooms; 0 when it has them all. Past --max-stream-lag the node is unready.",
		}, func() float64 { return b.Lag().Age.Seconds() }),
		leader: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lobby_nats_stream_leader", Help: "1 while this node's embedded NATS server (--durable) leads the stream, as checked every 5 s; else 0.",
		}, func() float64 { return boolGauge(b.leader.Load()) }),
		follows: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lobby_bridge_rooms_followed", Help: "Rooms whose stream this node follows (it has members in them).",
		}, func() float64 { return float64(b.follows.Load()) }),
	}
	for _, k := range []string{kindRoom, kindPresence, kindDirect} {
		m.in.WithLabelValues(k)
		m.out.WithLabelValues(k)
	}
	return m
}

// Collectors are the broker's metrics, for the node's registry.
func (b *Broker) Collectors() []prometheus.Collector {
	m := b.metrics
	return []prometheus.Collector{m.in, m.out, m.publishSeconds, m.deliveryDelay, m.publishFailures, m.storeFull, m.casRetries, m.publishRetries, m.tailRestarts, m.tailPaused, m.behindTotal, m.followRepairs, m.consumersRefused, m.connected, m.lag, m.lagSeconds, m.follows, m.leader}
}
