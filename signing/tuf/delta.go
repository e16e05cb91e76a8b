package tuf

// FieldSourceVersion names the custom field that makes a target a delta payload: the
// version a USR partition must hold for the delta to apply to it. It is an extra string
// field (Custom.Extra), so metadata that has it stays readable by every client, and
// `syctl tuf add-target --custom source_version=V` writes it. A delta target carries the
// version and board of the release it produces like the full payload's target beside it;
// a target without the field is a full payload.
const FieldSourceVersion = "source_version"

// SourceVersion returns the delta source version c names, "" for a full payload.
func (c Custom) SourceVersion() string {
	s, _ := c.Extra[FieldSourceVersion].(string)
	return s
}
