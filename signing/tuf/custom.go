package tuf

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Names of the custom fields a payload target carries.
const (
	FieldVersion         = "version"
	FieldBoard           = "board"
	FieldChannels        = "channels"
	FieldReleaseCounter  = "release_counter"
	FieldPartitionSize   = "partition_size"
	FieldPartitionSHA256 = "partition_sha256"
)

// MaxCustomSize bounds the custom object of one target.
const MaxCustomSize = 16 << 10

// ErrCustom is returned for a custom object that breaks the rules of [Custom].
var ErrCustom = errors.New("tuf: invalid custom fields")

// Custom is the signed description of a payload target, carried in the target's custom
// object. The wire form is a flat JSON object whose values are strings or integers only:
//
//	{"version":"4230.2.0","board":"amd64-usr","channels":"stable,beta",
//	 "release_counter":4230002,"partition_size":1073741824,"partition_sha256":"<64 hex>"}
//
// channels is a hint (a comma-separated list of channel names), never a decision: the server
// chooses what each channel gets, the host checks version and release counter. Fields other
// than the six named ones are kept in Extra (string or int64 values) and round-trip.
type Custom struct {
	Version         string
	Board           string
	Channels        []string
	ReleaseCounter  int64
	PartitionSize   int64
	PartitionSHA256 string // lowercase hex
	Extra           map[string]any
}

var (
	fieldNameRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	channelRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	printableRE  = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
	knownFields  = []string{FieldVersion, FieldBoard, FieldChannels, FieldReleaseCounter, FieldPartitionSize, FieldPartitionSHA256}
	integerField = map[string]bool{FieldReleaseCounter: true, FieldPartitionSize: true}
)

// Validate checks the fields: version and board present and printable without spaces,
// channel names simple, counters not negative, the partition hash 64 lowercase hex digits
// when set, extra field names lowercase identifiers with string or int64 values.
func (c Custom) Validate() error {
	if !printableRE.MatchString(c.Version) {
		return fmt.Errorf("%w: version %q", ErrCustom, c.Version)
	}
	if !printableRE.MatchString(c.Board) {
		return fmt.Errorf("%w: board %q", ErrCustom, c.Board)
	}
	for _, ch := range c.Channels {
		if !channelRE.MatchString(ch) {
			return fmt.Errorf("%w: channel %q", ErrCustom, ch)
		}
	}
	if c.ReleaseCounter < 0 {
		return fmt.Errorf("%w: negative release counter", ErrCustom)
	}
	if c.PartitionSize < 0 {
		return fmt.Errorf("%w: negative partition size", ErrCustom)
	}
	if c.PartitionSHA256 != "" {
		if b, err := hex.DecodeString(c.PartitionSHA256); err != nil || len(b) != 32 || strings.ToLower(c.PartitionSHA256) != c.PartitionSHA256 {
			return fmt.Errorf("%w: partition_sha256 %q is not 64 lowercase hex digits", ErrCustom, c.PartitionSHA256)
		}
	}
	for k, v := range c.Extra {
		if !fieldNameRE.MatchString(k) || slices.Contains(knownFields, k) {
			return fmt.Errorf("%w: extra field name %q", ErrCustom, k)
		}
		switch v.(type) {
		case string, int64:
		default:
			return fmt.Errorf("%w: extra field %q is %T (only strings and integers)", ErrCustom, k, v)
		}
	}
	return nil
}

// MarshalJSON writes the flat object described on [Custom], keys sorted.
func (c Custom) MarshalJSON() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := make(map[string]any, len(c.Extra)+6)
	maps.Copy(m, c.Extra)
	m[FieldVersion] = c.Version
	m[FieldBoard] = c.Board
	if len(c.Channels) > 0 {
		m[FieldChannels] = strings.Join(c.Channels, ",")
	}
	if c.ReleaseCounter != 0 {
		m[FieldReleaseCounter] = c.ReleaseCounter
	}
	if c.PartitionSize != 0 {
		m[FieldPartitionSize] = c.PartitionSize
	}
	if c.PartitionSHA256 != "" {
		m[FieldPartitionSHA256] = c.PartitionSHA256
	}
	return json.Marshal(m)
}

// RawMessage returns the custom object in the form go-tuf's TargetFiles.Custom holds.
func (c Custom) RawMessage() (*json.RawMessage, error) {
	b, err := c.MarshalJSON()
	if err != nil {
		return nil, err
	}
	raw := json.RawMessage(b)
	return &raw, nil
}

// ParseCustom parses a target's custom object strictly: a JSON object of at most
// MaxCustomSize bytes whose values are strings or integers, known fields of the right kind,
// no duplicate keys, nothing after the object, and the result passing [Custom.Validate].
func ParseCustom(data []byte) (Custom, error) {
	var c Custom
	if len(data) > MaxCustomSize {
		return c, fmt.Errorf("%w: %d bytes, more than %d", ErrCustom, len(data), MaxCustomSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return c, fmt.Errorf("%w: not a JSON object", ErrCustom)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return c, fmt.Errorf("%w: %v", ErrCustom, err)
		}
		key, ok := tok.(string)
		if !ok {
			return c, fmt.Errorf("%w: bad key", ErrCustom)
		}
		if seen[key] {
			return c, fmt.Errorf("%w: duplicate field %q", ErrCustom, key)
		}
		seen[key] = true
		tok, err = dec.Token()
		if err != nil {
			return c, fmt.Errorf("%w: field %q: %v", ErrCustom, key, err)
		}
		var value any
		switch v := tok.(type) {
		case string:
			value = v
		case json.Number:
			n, err := strconv.ParseInt(v.String(), 10, 64)
			if err != nil {
				return c, fmt.Errorf("%w: field %q: %s is not an integer", ErrCustom, key, v)
			}
			value = n
		default:
			return c, fmt.Errorf("%w: field %q is not a string or an integer", ErrCustom, key)
		}
		if err := c.set(key, value); err != nil {
			return c, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return c, fmt.Errorf("%w: %v", ErrCustom, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return c, fmt.Errorf("%w: data after the object", ErrCustom)
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Custom) set(key string, value any) error {
	s, isString := value.(string)
	n, _ := value.(int64)
	if slices.Contains(knownFields, key) && isString == integerField[key] {
		return fmt.Errorf("%w: field %q has the wrong type", ErrCustom, key)
	}
	switch key {
	case FieldVersion:
		c.Version = s
	case FieldBoard:
		c.Board = s
	case FieldChannels:
		c.Channels = nil
		for ch := range strings.SplitSeq(s, ",") {
			if ch = strings.TrimSpace(ch); ch != "" {
				c.Channels = append(c.Channels, ch)
			}
		}
	case FieldReleaseCounter:
		c.ReleaseCounter = n
	case FieldPartitionSize:
		c.PartitionSize = n
	case FieldPartitionSHA256:
		c.PartitionSHA256 = s
	default:
		if c.Extra == nil {
			c.Extra = map[string]any{}
		}
		c.Extra[key] = value
	}
	return nil
}
