package conc

import "fmt"

// What another broker needs to share the Broker's option and topic
// semantics. A broker implemented outside this package (over NATS, say)
// accepts the same SubBuffer and SubPolicy options and the same topic
// grammar; these functions let it read the options and check topics
// exactly as Broker does, instead of keeping a copy of the rules that
// could drift.

// SubSettings is what a list of subscription options amounts to: the
// buffer a subscription gets before its policy applies, and the policy.
// The zero SubSettings is an unbuffered DropNewest subscription; a broker
// starts from SubSettingsOf() instead, which has DefaultSubBuffer.
type SubSettings struct {
	// Buffer is the number of messages that may wait for the consumer.
	Buffer int
	// Policy says what a publisher does when the buffer is full.
	Policy Overflow
}

// SubSettingsOf returns the settings that opts give, applied in order over
// the defaults (DefaultSubBuffer, DropNewest): what NewBroker(opts...) makes
// the default of every subscription. It panics with a conc: message when an
// option is nil.
func SubSettingsOf(opts ...BrokerOption) SubSettings {
	cfg := subConfig{buffer: DefaultSubBuffer, bufferSet: true}
	for i, o := range opts {
		checkOption("broker", i, o == nil)
		o.applyBroker(&cfg)
	}
	return SubSettings{Buffer: cfg.buffer, Policy: cfg.policy}
}

// With returns s overridden by opts, applied in order: what Subscribe's own
// options do to the broker's defaults. It panics with a conc: message when
// an option is nil.
func (s SubSettings) With(opts ...SubOption) SubSettings {
	cfg := subConfig{buffer: s.Buffer, bufferSet: true, policy: s.Policy}
	for i, o := range opts {
		checkOption("subscription", i, o == nil)
		o.applySub(&cfg)
	}
	return SubSettings{Buffer: cfg.buffer, Policy: cfg.policy}
}

// CheckTopic reports whether topic may be published to, by the rules
// Broker.Publish applies: nil for a literal topic of non-empty
// dot-separated tokens without wildcards, whitespace or control characters,
// and otherwise an error matching ErrInvalidTopic that quotes the topic and
// says what is wrong with it.
func CheckTopic(topic string) error {
	if _, problem := parseTopic(topic, false); problem != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidTopic, topic, problem)
	}
	return nil
}

// CheckPattern reports whether pattern may be subscribed to, by the rules
// Broker.Subscribe applies: literal tokens, "*" for exactly one token and a
// final ">" for one or more, no empty token, whitespace or control
// character. It returns nil or an error matching ErrInvalidTopic that
// quotes the pattern and says what is wrong with it; Broker.Subscribe
// panics on the same patterns.
func CheckPattern(pattern string) error {
	if _, problem := parseTopic(pattern, true); problem != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidTopic, pattern, problem)
	}
	return nil
}
