package conc

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubSettingsOfAppliesOptionsInOrderOverTheDefaults(t *testing.T) {
	assert.Equal(t, SubSettings{Buffer: DefaultSubBuffer, Policy: DropNewest}, SubSettingsOf())
	got := SubSettingsOf(SubBuffer(8), SubPolicy(BlockPublisher), SubBuffer(3))
	assert.Equal(t, SubSettings{Buffer: 3, Policy: BlockPublisher}, got)

	// With overrides only what it is given, as Subscribe does.
	assert.Equal(t, SubSettings{Buffer: 3, Policy: DropOldest}, got.With(SubPolicy(DropOldest)))
	assert.Equal(t, SubSettings{Buffer: 0, Policy: BlockPublisher}, got.With(SubBuffer(0)))
	assert.Equal(t, got, got.With())

	assert.PanicsWithValue(t, "conc: broker option 1 must not be nil", func() { SubSettingsOf(SubBuffer(1), nil) })
	assert.PanicsWithValue(t, "conc: subscription option 0 must not be nil", func() { got.With(nil) })
}

// SubSettingsOf and With must describe what the Broker really does with the
// same options, as its String shows them.
func TestSubSettingsAgreeWithBroker(t *testing.T) {
	defaults := []BrokerOption{SubBuffer(5), SubPolicy(DropOldest)}
	b := NewBroker[int](defaults...)
	defer b.Close()
	for _, opts := range [][]SubOption{nil, {SubBuffer(2)}, {SubPolicy(BlockPublisher), SubBuffer(1)}} {
		want := SubSettingsOf(defaults...).With(opts...)
		s := b.Subscribe("t", opts...)
		assert.Equal(t, fmt.Sprintf("Subscription(%q, %v, buffer %d)", "t", want.Policy, want.Buffer), s.String())
	}
}

// Topics with whitespace or control characters cannot be NATS subjects, so
// the Broker refuses them like any other malformed topic, and CheckTopic and
// CheckPattern say exactly what Publish and Subscribe do.
func TestCheckTopicAndPatternAgreeWithBroker(t *testing.T) {
	b := NewBroker[int]()
	defer b.Close()
	b.Subscribe("a.b")
	ctx := context.Background()
	for _, topic := range []string{
		"a.b", "orders.eu.created", "é.ü", "$SYS.x", // valid
		"", ".", "a..b", "a.*", "a.>", "a*", // the old rules
		"a b", "a.b ", " a", "a\tb", "a\nb", "a\rb", "a.\x00", "a\x7f", "a\vb", "a\fb", // whitespace, controls
	} {
		checked := CheckTopic(topic)
		published := b.Publish(ctx, topic, 1)
		if checked == nil {
			assert.NoError(t, published, "%q", topic)
			continue
		}
		require.ErrorIs(t, checked, ErrInvalidTopic, "%q", topic)
		require.ErrorIs(t, published, ErrInvalidTopic, "%q", topic)
		assert.Equal(t, checked.Error(), published.Error())
	}
	assert.EqualError(t, CheckTopic("a b"), `conc: invalid topic "a b": whitespace or control character`)

	for _, pattern := range []string{
		"a.b", "a.*", "a.>", ">", "*.*", // valid
		"", "a..b", "a.>.b", "a*", // the old rules
		"a b.>", "*. ", "a\t.*", "a.\n", "\x01", // whitespace, controls
	} {
		err := CheckPattern(pattern)
		if err == nil {
			assert.NotPanics(t, func() { b.Subscribe(pattern).Unsubscribe() }, "%q", pattern)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidTopic, "%q", pattern)
		_, problem := parseTopic(pattern, true)
		assert.PanicsWithValue(t, fmt.Sprintf("conc: invalid subscription pattern %q: %s", pattern, problem),
			func() { b.Subscribe(pattern) }, "%q", pattern)
	}
	assert.EqualError(t, CheckPattern("a b.>"), `conc: invalid topic "a b.>": whitespace or control character`)
}
