// Package natsbroker is conc.Broker's API over NATS: the same Publish,
// Subscribe with conc.SubBuffer and conc.SubPolicy, C, Unsubscribe,
// Dropped, Stats and Close, with subscribers in other processes. A program
// moves from one process to several by changing the constructor:
//
//	b := conc.NewBroker[Order]()          // one process
//	b := natsbroker.New[Order](nc)        // many, over the *nats.Conn nc
//
// Topics and patterns follow the same grammar in both (dot-separated
// tokens, "*" for one token, a final ">" for one or more; see
// conc.CheckTopic and conc.CheckPattern), so a topic one accepts the other
// accepts, and NATS subjects are exactly those topics. Events cross the
// wire through a Codec, JSON by default.
//
// # Delivery guarantee
//
// This is core NATS: at most once. A message reaches the subscriptions
// that the server knows of when it routes the message, in the order each
// connection published it; a subscriber that is disconnected, or not yet
// subscribed, when it passes never sees it, and the server keeps nothing.
// There is no acknowledgement and no redelivery. JetStream durable
// subscriptions, which would give at-least-once delivery with an ack
// after the subscriber has received the event, are not implemented.
//
// What the package does promise is that nothing is lost without a count.
// Every loss this process can see is counted in Stats and, per
// subscription, in Dropped, and the ones that happen asynchronously are
// reported to the OnError callback:
//
//   - a subscription's policy (DropNewest, DropOldest) discarding an event
//     when its buffer is full;
//   - the NATS client's pending limit discarding events for a subscription
//     that fell too far behind (a "slow consumer", DroppedSlow);
//   - a payload that does not decode (Undecodable; the subscription goes
//     on with the next message);
//   - a Publish that fails: invalid topic, encoding error, payload over
//     the server's limit, closed connection, reconnect buffer full (each
//     returned as an error and counted).
//
// # Slow subscribers
//
// DropNewest and DropOldest act on the subscription's own buffer, exactly
// as in conc.Broker. BlockPublisher cannot make a publisher in another
// process wait; here it makes the subscription's delivery goroutine wait
// for room, so that events queue in the NATS client (see PendingLimits)
// instead of being dropped, until the client's pending limit is hit; past
// it, NATS drops them and they are counted in DroppedSlow. Publish itself
// never waits for a subscriber.
//
// # Outages
//
// The connection's own reconnect logic applies. While it is reconnecting,
// Publish hands events to nats.go's reconnect buffer (counted in
// PublishedOffline; sent once the connection is back, lost if it closes
// first) or, once that buffer is full, fails with
// nats.ErrReconnectBufExceeded (counted in PublishFailed). Subscriptions
// are renewed by nats.go on reconnect and go on delivering; events
// published by others during the outage are not seen (at most once).
package natsbroker
