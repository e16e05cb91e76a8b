package engine

import (
	"errors"

	"github.com/switchyard-os/switchyard/omaha"
)

// Sentinels callers branch on.
var (
	ErrBusy        = errors.New("engine: busy with an update")
	ErrDowngrade   = errors.New("engine: offered version is not above the running one")
	ErrClock       = errors.New("engine: the clock is before the last verified time")
	ErrTrust       = errors.New("engine: TUF does not vouch for the offer")
	ErrMismatch    = errors.New("engine: Omaha and TUF disagree about the payload")
	ErrNeedReboot  = errors.New("engine: an applied update waits for a reboot")
	ErrNoPending   = errors.New("engine: no update to confirm")
	ErrNotRebooted = errors.New("engine: the host has not rebooted since the flip")
	ErrRebooting   = errors.New("engine: the reboot was already requested")
)

// Failure is an error with the Omaha error code reported for it.
type Failure struct {
	Code omaha.ErrorCode
	Err  error
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// ErrorCode returns the Omaha code.
func (f *Failure) ErrorCode() omaha.ErrorCode { return f.Code }

// fail wraps err with code.
func fail(code omaha.ErrorCode, err error) error { return &Failure{Code: code, Err: err} }

// CodeOf returns the Omaha error code of err: the code of the first error in its chain that
// has one (Failure, omaha.StatusError, or any other type with an ErrorCode method), else
// ErrorCodeError.
func CodeOf(err error) omaha.ErrorCode {
	var c interface{ ErrorCode() omaha.ErrorCode }
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return omaha.ErrorCodeError
}
