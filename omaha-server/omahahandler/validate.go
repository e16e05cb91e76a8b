package omahahandler

import (
	"errors"

	"github.com/switchyard-os/switchyard/omaha"
)

// invalidRequest returns the first field of req that is the client's error and has no
// Omaha app status of its own (a machine id with a quote, a track with spaces, a control
// character in oem, a bidi override in the alias): the whole request is answered with
// HTTP 400 before anything is stored. An invalid appid or version is left to the per-app
// answer (error-invalidAppId, error-invalidVersion).
func invalidRequest(req *omaha.Request) error {
	err := req.Validate()
	var ve *omaha.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	if _, ok := ve.AppStatus(); !ok {
		return err
	}
	// The first problem has an app status; a later app may still have one without.
	for _, a := range req.Apps {
		if err := a.Validate(); errors.As(err, &ve) {
			if _, ok := ve.AppStatus(); !ok {
				return err
			}
		}
	}
	return nil
}
