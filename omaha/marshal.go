package omaha

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// xmlHeader starts every document this package writes.
const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// Marshal writes the request as a UTF-8 XML document, compact, attribute values escaped.
func (r *Request) Marshal() ([]byte, error) { return marshal(r) }

// Marshal writes the response as a UTF-8 XML document, compact, attribute values escaped.
func (r *Response) Marshal() ([]byte, error) { return marshal(r) }

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	if err := xml.NewEncoder(&b).Encode(v); err != nil {
		return nil, fmt.Errorf("omaha: marshaling: %w", err)
	}
	return b.Bytes(), nil
}
