package transport

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lobby/lobby/actors"
)

// Disconnect reasons, the values of lobby_disconnects_total's reason
// label, for closes no socket.Reason says: the server's closes are
// counted under their Reason's Label (actors.CloseReasons lists the
// actors').
const (
	dcClientClosed   = "client_closed"
	dcConnectionLost = "connection_lost"
	dcTooBig         = "message_too_big"
	// dcPolicy counts a server close whose Reason has no Label.
	dcPolicy = "policy"
)

// Upgrade refusals, the values of lobby_upgrades_refused_total's reason label.
const (
	refusedBadRequest   = "bad_request"
	refusedOverCapacity = "over_capacity"
	refusedUnauthorized = "unauthorized"
	refusedForbidden    = "forbidden"
	// participantsRateLimited and participantsFull are the reasons of
	// lobby_questionnaire_participants_refused_total.
	participantsRateLimited = "rate_limited"
	participantsFull        = "full"
	refusedOrigin           = "origin"
	refusedDraining         = "draining"
	refusedConnectRate      = "connect_rate"
	refusedNotFound         = "not_found"
)

// metrics are one Server's Prometheus metrics, on a registry of its own so
// that two servers in one process (tests) do not collide.
type metrics struct {
	registry        *prometheus.Registry
	connections     prometheus.Gauge
	received        prometheus.Counter
	delivered       prometheus.Counter
	disconnects     *prometheus.CounterVec
	fanout          prometheus.Histogram
	queueDropped    prometheus.Counter
	rateLimited     prometheus.Counter
	upgradesRefused *prometheus.CounterVec
	httpRejected    *prometheus.CounterVec
	// participantsIssued and participantsRefused count the participant
	// identities of POST /questionnaires/{id}/participants.
	participantsIssued  prometheus.Counter
	participantsRefused *prometheus.CounterVec
	// sseStreams counts the open server-sent event streams, a connection
	// kind of their own (lobby_connections counts WebSockets).
	sseStreams prometheus.Gauge
	// duplicates and outcomeUnknown count the publishes answered as a
	// duplicate of an earlier one with their Idempotency-Key, and those
	// answered 503 outcome_unknown.
	duplicates     prometheus.Counter
	outcomeUnknown prometheus.Counter
}

// newMetrics makes a Server's metrics, of its node's stats and its body
// budget.
func newMetrics(stats *actors.Stats, bodies *bodyBudget) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lobby_connections", Help: "Open WebSocket connections.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_messages_received_total", Help: "Data frames read from clients plus HTTP publishes and sends accepted.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_messages_delivered_total", Help: "Frames written to client sockets.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobby_disconnects_total", Help: "Closed WebSocket connections, by reason.",
		}, []string{"reason"}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lobby_publish_fanout_seconds",
			Help:    "Time from an HTTP publish's arrival to its room having handed it to every member.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2.5, 12),
		}),
		queueDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_queue_dropped_total", Help: "Frames not queued for a client because its queue was full (it is then closed as a slow consumer) or it was closing.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_rate_limited_total", Help: "Client frames refused by the inbound rate limit.",
		}),
		upgradesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobby_upgrades_refused_total", Help: "WebSocket connects refused before the upgrade, by reason.",
		}, []string{"reason"}),
		sseStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lobby_sse_streams", Help: "Open server-sent event streams (GET /rooms/{room}/events); they count toward --max-connections with the WebSockets.",
		}),
		httpRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobby_http_rejected_total", Help: "HTTP requests refused, by status code: POST routes (publish, send) and, with host checking on, requests for a foreign Host.",
		}, []string{"code"}),
		participantsIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_questionnaire_participants_issued_total", Help: "Participant identities issued (POST /questionnaires/{id}/participants).",
		}),
		participantsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobby_questionnaire_participants_refused_total", Help: "Participant identities refused, by reason: rate_limited (--participant-rate of one address), full (--max-participants of one questionnaire).",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_publish_duplicates_total", Help: "HTTP publishes whose Idempotency-Key the room had within --idempotency-window: answered with the first one's seq, neither stored nor delivered again.",
		}),
		outcomeUnknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lobby_publish_outcome_unknown_total", Help: "HTTP publishes answered 503 outcome_unknown: no answer in time from the room or the stream, the message maybe stored.",
		}),
	}
	m.registry.MustRegister(m.participantsIssued, m.participantsRefused, m.duplicates, m.outcomeUnknown)
	for _, r := range []string{participantsRateLimited, participantsFull} {
		m.participantsRefused.WithLabelValues(r)
	}
	m.registry.MustRegister(
		m.connections, m.received, m.delivered, m.disconnects, m.fanout,
		m.queueDropped, m.rateLimited, m.upgradesRefused, m.httpRejected,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lobby_rooms", Help: "Rooms alive, empty ones keeping history included."},
			func() float64 { return float64(stats.Rooms.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_rooms_refused_total", Help: "Joins and publishes refused because the node had --max-rooms rooms."},
			func() float64 { return float64(stats.RoomsRefused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_rooms_evicted_total", Help: "Rooms that lived only for their history, stopped to make room for a new one at --max-rooms (their history stays)."},
			func() float64 { return float64(stats.RoomsEvicted.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lobby_history_bytes", Help: "Memory the rooms' histories hold, messages and frames counted, against --history-budget."},
			func() float64 { return float64(stats.HistoryBytes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lobby_held_bytes", Help: "Bytes of frames clients sent before their join completed, held until it does, against --held-budget."},
			func() float64 { return float64(stats.Held.Used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lobby_http_body_bytes", Help: "Bytes charged for the HTTP request bodies being read (twice what was read of each), against --body-budget."},
			func() float64 { return float64(bodies.inUse()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_recoveries_too_long_total", Help: "lobby.v1 recoveries answered recovered:false because they were longer than a replay may hold (10 000 messages, 8 MiB)."},
			func() float64 { return float64(stats.ReplaysTooLong.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_cluster_dropped_total", Help: "Text-protocol frames dropped because the cluster was unavailable (that protocol has no error frame)."},
			func() float64 { return float64(stats.ClusterDropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_history_evicted_total", Help: "History entries dropped, oldest first across rooms, to keep under --history-budget."},
			func() float64 { return float64(stats.HistoryEvicted.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_follow_refused_total", Help: "Joins (subscribes included) and HTTP publishes refused at once because NATS refused the node its consumer (lobby_nats_consumers_refused_total): it can follow no room.",
			ConstLabels: prometheus.Labels{"kind": "join"}},
			func() float64 { return float64(stats.JoinsFollowRefused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_follow_refused_total", Help: "Joins (subscribes included) and HTTP publishes refused at once because NATS refused the node its consumer (lobby_nats_consumers_refused_total): it can follow no room.",
			ConstLabels: prometheus.Labels{"kind": "publish"}},
			func() float64 { return float64(stats.PublishesFollowRefused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_idempotency_keys_evicted_total", Help: "Idempotency keys a single node forgot before --idempotency-window ended, to keep at most 65 536."},
			func() float64 { return float64(stats.KeysEvicted.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lobby_subscriptions", Help: "Memberships of connections in rooms: a single-room connection's one, and each room a lobby.v1 connection subscribed to."},
			func() float64 { return float64(stats.Subscriptions.Load()) }),
		m.sseStreams,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every reason is exported from the start, at 0, so that rate() and
	// alerts work before the first event.
	for _, r := range []string{dcClientClosed, dcConnectionLost, dcTooBig, dcPolicy} {
		m.disconnects.WithLabelValues(r)
	}
	for _, r := range append(actors.CloseReasons(), slowConsumer, writeFailed, controlFlood, fragmentFlood) {
		m.disconnects.WithLabelValues(r.Label)
	}
	for reason, n := range map[string]*atomic.Uint64{
		"already_subscribed":     &stats.RefusedAlready,
		"too_many_subscriptions": &stats.RefusedTooMany,
		"forbidden":              &stats.RefusedForbidden,
		"too_many_rooms":         &stats.RefusedRoomLimit,
	} {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lobby_subscriptions_refused_total",
			Help:        "lobby.v1 subscribes refused, by reason (the error frame's code).",
			ConstLabels: prometheus.Labels{"reason": reason}},
			func() float64 { return float64(n.Load()) }))
	}
	for _, r := range []string{refusedBadRequest, refusedOverCapacity, refusedUnauthorized, refusedForbidden, refusedOrigin, refusedDraining, refusedConnectRate, refusedNotFound} {
		m.upgradesRefused.WithLabelValues(r)
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
