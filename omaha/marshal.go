package omaha

// xmlHeader starts every document this package writes.
const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// Marshal writes the request as a UTF-8 XML document, compact, attribute values escaped.
func (r *Request) Marshal() ([]byte, error) {
	e := encoder{b: make([]byte, 0, 1024)}
	e.b = append(e.b, xmlHeader...)
	e.request(r)
	return e.b, nil
}

// Marshal writes the response as a UTF-8 XML document, compact, attribute values escaped.
func (r *Response) Marshal() ([]byte, error) {
	e := encoder{b: make([]byte, 0, 1024)}
	e.b = append(e.b, xmlHeader...)
	e.response(r)
	return e.b, nil
}
