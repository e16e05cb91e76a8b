package omaha

import (
	"fmt"
	"strconv"
	"strings"
)

// EventType is the eventtype attribute of a request <event>. The numbers are Omaha's; update
// engines in the Flatcar lineage send 3, 13 and 14, and Nebraska adds 800.
type EventType int

// Event types. Only EventTypeUpdateComplete, EventTypeUpdateDownloadStarted and
// EventTypeUpdateDownloadFinished are sent by a Flatcar update_engine; the rest exist so a
// server can name what other Omaha clients report.
const (
	EventTypeUnknown                    EventType = 0
	EventTypeDownloadComplete           EventType = 1
	EventTypeInstallComplete            EventType = 2
	EventTypeUpdateComplete             EventType = 3
	EventTypeUninstall                  EventType = 4
	EventTypeDownloadStarted            EventType = 5
	EventTypeInstallStarted             EventType = 6
	EventTypeNewApplicationInstallStart EventType = 9
	EventTypeSetupStarted               EventType = 10
	EventTypeSetupFinished              EventType = 11
	EventTypeUpdateApplicationStarted   EventType = 12
	EventTypeUpdateDownloadStarted      EventType = 13
	EventTypeUpdateDownloadFinished     EventType = 14
	EventTypeUpdateInstallerStarted     EventType = 15
	EventTypeSetupUpdateBegin           EventType = 16
	EventTypeSetupUpdateComplete        EventType = 17
	EventTypeRegisterProductComplete    EventType = 20
	EventTypeOEMInstallFirstCheck       EventType = 30
	EventTypeAppSpecificCommandStarted  EventType = 40
	EventTypeAppSpecificCommandEnded    EventType = 41
	EventTypeSetupFailure               EventType = 100
	EventTypeComServerFailure           EventType = 102
	EventTypeSetupUpdateFailure         EventType = 103
	// EventTypeUpdateInstalled is Nebraska's "installed, completion pending" (800/1).
	EventTypeUpdateInstalled EventType = 800
)

var eventTypeNames = map[EventType]string{
	EventTypeUnknown:                    "Unknown",
	EventTypeDownloadComplete:           "DownloadComplete",
	EventTypeInstallComplete:            "InstallComplete",
	EventTypeUpdateComplete:             "UpdateComplete",
	EventTypeUninstall:                  "Uninstall",
	EventTypeDownloadStarted:            "DownloadStarted",
	EventTypeInstallStarted:             "InstallStarted",
	EventTypeNewApplicationInstallStart: "NewApplicationInstallStarted",
	EventTypeSetupStarted:               "SetupStarted",
	EventTypeSetupFinished:              "SetupFinished",
	EventTypeUpdateApplicationStarted:   "UpdateApplicationStarted",
	EventTypeUpdateDownloadStarted:      "UpdateDownloadStarted",
	EventTypeUpdateDownloadFinished:     "UpdateDownloadFinished",
	EventTypeUpdateInstallerStarted:     "UpdateInstallerStarted",
	EventTypeSetupUpdateBegin:           "SetupUpdateBegin",
	EventTypeSetupUpdateComplete:        "SetupUpdateComplete",
	EventTypeRegisterProductComplete:    "RegisterProductComplete",
	EventTypeOEMInstallFirstCheck:       "OEMInstallFirstCheck",
	EventTypeAppSpecificCommandStarted:  "AppSpecificCommandStarted",
	EventTypeAppSpecificCommandEnded:    "AppSpecificCommandEnded",
	EventTypeSetupFailure:               "SetupFailure",
	EventTypeComServerFailure:           "ComServerFailure",
	EventTypeSetupUpdateFailure:         "SetupUpdateFailure",
	EventTypeUpdateInstalled:            "UpdateInstalled",
}

func (t EventType) String() string {
	if s, ok := eventTypeNames[t]; ok {
		return s
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// EventResult is the eventresult attribute of a request <event>.
type EventResult int

// Event results. Flatcar sends 0, 1, 2 and 9.
const (
	EventResultError                 EventResult = 0
	EventResultSuccess               EventResult = 1
	EventResultSuccessReboot         EventResult = 2
	EventResultSuccessRestartBrowser EventResult = 3
	EventResultCancelled             EventResult = 4
	EventResultErrorInstallerMSI     EventResult = 5
	EventResultErrorInstallerOther   EventResult = 6
	EventResultNoUpdate              EventResult = 7
	EventResultInstallerSystem       EventResult = 8
	EventResultUpdateDeferred        EventResult = 9
	EventResultHandoffError          EventResult = 10
)

var eventResultNames = map[EventResult]string{
	EventResultError:                 "Error",
	EventResultSuccess:               "Success",
	EventResultSuccessReboot:         "SuccessReboot",
	EventResultSuccessRestartBrowser: "SuccessRestartBrowser",
	EventResultCancelled:             "Cancelled",
	EventResultErrorInstallerMSI:     "ErrorInstallerMSI",
	EventResultErrorInstallerOther:   "ErrorInstallerOther",
	EventResultNoUpdate:              "NoUpdate",
	EventResultInstallerSystem:       "InstallerSystem",
	EventResultUpdateDeferred:        "UpdateDeferred",
	EventResultHandoffError:          "HandoffError",
}

func (r EventResult) String() string {
	if s, ok := eventResultNames[r]; ok {
		return s
	}
	return "EventResult(" + strconv.Itoa(int(r)) + ")"
}

// ErrorCode is the errorcode attribute of a request <event>: a base code (the update engine's
// action exit code) in the low bits, OR-ed with flag bits in the top four. It is sent only when
// the event result is not a success.
//
// On the wire it is a decimal number. A C++ engine formats the code as a signed 32-bit int, so
// a code with the dev-mode flag arrives negative; both spellings parse to the same value, and
// Marshal writes the unsigned one.
type ErrorCode uint32

// Base error codes, as Flatcar's update_engine numbers them.
const (
	ErrorCodeSuccess                                ErrorCode = 0
	ErrorCodeError                                  ErrorCode = 1
	ErrorCodeOmahaRequestError                      ErrorCode = 2
	ErrorCodeOmahaResponseHandlerError              ErrorCode = 3
	ErrorCodeFilesystemCopierError                  ErrorCode = 4
	ErrorCodePostinstallRunnerError                 ErrorCode = 5
	ErrorCodeSetBootableFlagError                   ErrorCode = 6
	ErrorCodeInstallDeviceOpenError                 ErrorCode = 7
	ErrorCodeKernelDeviceOpenError                  ErrorCode = 8
	ErrorCodeDownloadTransferError                  ErrorCode = 9
	ErrorCodePayloadHashMismatchError               ErrorCode = 10
	ErrorCodePayloadSizeMismatchError               ErrorCode = 11
	ErrorCodeDownloadPayloadVerificationError       ErrorCode = 12
	ErrorCodeDownloadNewPartitionInfoError          ErrorCode = 13
	ErrorCodeDownloadWriteError                     ErrorCode = 14
	ErrorCodeNewRootfsVerificationError             ErrorCode = 15
	ErrorCodeNewKernelVerificationError             ErrorCode = 16
	ErrorCodeSignedDeltaPayloadExpectedError        ErrorCode = 17
	ErrorCodeDownloadPayloadPubKeyVerificationError ErrorCode = 18
	ErrorCodePostinstallBootedFromFirmwareB         ErrorCode = 19
	ErrorCodeDownloadStateInitializationError       ErrorCode = 20
	ErrorCodeDownloadInvalidMetadataMagicString     ErrorCode = 21
	ErrorCodeDownloadSignatureMissingInManifest     ErrorCode = 22
	ErrorCodeDownloadManifestParseError             ErrorCode = 23
	ErrorCodeDownloadMetadataSignatureError         ErrorCode = 24
	ErrorCodeDownloadMetadataSignatureVerification  ErrorCode = 25
	ErrorCodeDownloadMetadataSignatureMismatch      ErrorCode = 26
	ErrorCodeDownloadOperationHashVerificationError ErrorCode = 27
	ErrorCodeDownloadOperationExecutionError        ErrorCode = 28
	ErrorCodeDownloadOperationHashMismatch          ErrorCode = 29
	ErrorCodeOmahaRequestEmptyResponseError         ErrorCode = 30
	ErrorCodeOmahaRequestXMLParseError              ErrorCode = 31
	ErrorCodeDownloadInvalidMetadataSize            ErrorCode = 32
	ErrorCodeDownloadInvalidMetadataSignature       ErrorCode = 33
	ErrorCodeOmahaResponseInvalid                   ErrorCode = 34
	ErrorCodeOmahaUpdateIgnoredPerPolicy            ErrorCode = 35
	ErrorCodeOmahaUpdateDeferredPerPolicy           ErrorCode = 36
	ErrorCodeOmahaErrorInHTTPResponse               ErrorCode = 37
	ErrorCodeDownloadOperationHashMissingError      ErrorCode = 38
	ErrorCodeDownloadMetadataSignatureMissingError  ErrorCode = 39
	ErrorCodeOmahaUpdateDeferredForBackoff          ErrorCode = 40
	ErrorCodePostinstallPowerwashError              ErrorCode = 41
	ErrorCodeNewPCRPolicyVerificationError          ErrorCode = 42
	ErrorCodeNewPCRPolicyHTTPError                  ErrorCode = 43
	// ErrorCodeRollback is reported on the first check after the new partition failed to
	// stick and the host booted the previous version again.
	ErrorCodeRollback ErrorCode = 44
	// ErrorCodeDownloadIncomplete is internal to the engine and not normally reported.
	ErrorCodeDownloadIncomplete ErrorCode = 100
	// Switchyard's own codes are 1000 to 1999: above every Flatcar and ChromeOS code and
	// below the HTTP range, so none is ever read with another meaning.
	//
	// ErrorCodeDeltaSourceMismatch: the active partition is not a delta payload's source
	// (a source block's hash failed, checked before anything was written). The host falls
	// back to the full payload in the same cycle; a server counts it like any failure.
	ErrorCodeDeltaSourceMismatch ErrorCode = 1001
	// ErrorCodeHTTPResponseBase plus an HTTP status (capped at 999) reports a failed check.
	ErrorCodeHTTPResponseBase ErrorCode = 2000
)

// Flag bits of an ErrorCode.
const (
	// ErrorFlagDevMode: the host runs in developer mode.
	ErrorFlagDevMode ErrorCode = 1 << 31
	// ErrorFlagResumed: the failing attempt resumed an earlier download.
	ErrorFlagResumed ErrorCode = 1 << 30
	// ErrorFlagTestImage: the host runs a non-official (test) image.
	ErrorFlagTestImage ErrorCode = 1 << 29
	// ErrorFlagTestOmahaURL: the host talks to a server other than the production one.
	ErrorFlagTestOmahaURL ErrorCode = 1 << 28

	errorFlagMask = ErrorFlagDevMode | ErrorFlagResumed | ErrorFlagTestImage | ErrorFlagTestOmahaURL
)

var errorCodeNames = map[ErrorCode]string{
	ErrorCodeSuccess:                                "Success",
	ErrorCodeError:                                  "Error",
	ErrorCodeOmahaRequestError:                      "OmahaRequestError",
	ErrorCodeOmahaResponseHandlerError:              "OmahaResponseHandlerError",
	ErrorCodeFilesystemCopierError:                  "FilesystemCopierError",
	ErrorCodePostinstallRunnerError:                 "PostinstallRunnerError",
	ErrorCodeSetBootableFlagError:                   "SetBootableFlagError",
	ErrorCodeInstallDeviceOpenError:                 "InstallDeviceOpenError",
	ErrorCodeKernelDeviceOpenError:                  "KernelDeviceOpenError",
	ErrorCodeDownloadTransferError:                  "DownloadTransferError",
	ErrorCodePayloadHashMismatchError:               "PayloadHashMismatchError",
	ErrorCodePayloadSizeMismatchError:               "PayloadSizeMismatchError",
	ErrorCodeDownloadPayloadVerificationError:       "DownloadPayloadVerificationError",
	ErrorCodeDownloadNewPartitionInfoError:          "DownloadNewPartitionInfoError",
	ErrorCodeDownloadWriteError:                     "DownloadWriteError",
	ErrorCodeNewRootfsVerificationError:             "NewRootfsVerificationError",
	ErrorCodeNewKernelVerificationError:             "NewKernelVerificationError",
	ErrorCodeSignedDeltaPayloadExpectedError:        "SignedDeltaPayloadExpectedError",
	ErrorCodeDownloadPayloadPubKeyVerificationError: "DownloadPayloadPubKeyVerificationError",
	ErrorCodePostinstallBootedFromFirmwareB:         "PostinstallBootedFromFirmwareB",
	ErrorCodeDownloadStateInitializationError:       "DownloadStateInitializationError",
	ErrorCodeDownloadInvalidMetadataMagicString:     "DownloadInvalidMetadataMagicString",
	ErrorCodeDownloadSignatureMissingInManifest:     "DownloadSignatureMissingInManifest",
	ErrorCodeDownloadManifestParseError:             "DownloadManifestParseError",
	ErrorCodeDownloadMetadataSignatureError:         "DownloadMetadataSignatureError",
	ErrorCodeDownloadMetadataSignatureVerification:  "DownloadMetadataSignatureVerificationError",
	ErrorCodeDownloadMetadataSignatureMismatch:      "DownloadMetadataSignatureMismatch",
	ErrorCodeDownloadOperationHashVerificationError: "DownloadOperationHashVerificationError",
	ErrorCodeDownloadOperationExecutionError:        "DownloadOperationExecutionError",
	ErrorCodeDownloadOperationHashMismatch:          "DownloadOperationHashMismatch",
	ErrorCodeOmahaRequestEmptyResponseError:         "OmahaRequestEmptyResponseError",
	ErrorCodeOmahaRequestXMLParseError:              "OmahaRequestXMLParseError",
	ErrorCodeDownloadInvalidMetadataSize:            "DownloadInvalidMetadataSize",
	ErrorCodeDownloadInvalidMetadataSignature:       "DownloadInvalidMetadataSignature",
	ErrorCodeOmahaResponseInvalid:                   "OmahaResponseInvalid",
	ErrorCodeOmahaUpdateIgnoredPerPolicy:            "OmahaUpdateIgnoredPerPolicy",
	ErrorCodeOmahaUpdateDeferredPerPolicy:           "OmahaUpdateDeferredPerPolicy",
	ErrorCodeOmahaErrorInHTTPResponse:               "OmahaErrorInHTTPResponse",
	ErrorCodeDownloadOperationHashMissingError:      "DownloadOperationHashMissingError",
	ErrorCodeDownloadMetadataSignatureMissingError:  "DownloadMetadataSignatureMissingError",
	ErrorCodeOmahaUpdateDeferredForBackoff:          "OmahaUpdateDeferredForBackoff",
	ErrorCodePostinstallPowerwashError:              "PostinstallPowerwashError",
	ErrorCodeNewPCRPolicyVerificationError:          "NewPCRPolicyVerificationError",
	ErrorCodeNewPCRPolicyHTTPError:                  "NewPCRPolicyHTTPError",
	ErrorCodeRollback:                               "RollbackError",
	ErrorCodeDownloadIncomplete:                     "DownloadIncomplete",
	ErrorCodeDeltaSourceMismatch:                    "DeltaSourceMismatch",
}

var errorFlagNames = []struct {
	flag ErrorCode
	name string
}{
	{ErrorFlagDevMode, "DevModeFlag"},
	{ErrorFlagResumed, "ResumedFlag"},
	{ErrorFlagTestImage, "TestImageFlag"},
	{ErrorFlagTestOmahaURL, "TestOmahaUrlFlag"},
}

// Base returns the code without its flag bits.
func (c ErrorCode) Base() ErrorCode { return c &^ errorFlagMask }

// Flags returns only the flag bits of the code.
func (c ErrorCode) Flags() ErrorCode { return c & errorFlagMask }

// HTTPStatus reports the HTTP status a code in the 2000+status range carries.
func (c ErrorCode) HTTPStatus() (int, bool) {
	b := c.Base()
	if b >= ErrorCodeHTTPResponseBase && b < ErrorCodeHTTPResponseBase+1000 {
		return int(b - ErrorCodeHTTPResponseBase), true
	}
	return 0, false
}

// String names the base code and each flag, for example
// "OmahaResponseInvalid|TestOmahaUrlFlag" for 268435490.
func (c ErrorCode) String() string {
	var parts []string
	b := c.Base()
	switch name, ok := errorCodeNames[b]; {
	case ok:
		parts = append(parts, name)
	default:
		if st, ok := c.HTTPStatus(); ok {
			parts = append(parts, fmt.Sprintf("OmahaRequestHTTPResponse(%d)", st))
		} else {
			parts = append(parts, "ErrorCode("+strconv.FormatUint(uint64(b), 10)+")")
		}
	}
	for _, f := range errorFlagNames {
		if c&f.flag != 0 {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, "|")
}

// ParseErrorCode reads an errorcode attribute: a decimal number in either the unsigned or the
// signed 32-bit spelling.
func ParseErrorCode(s string) (ErrorCode, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < -(1<<31) || n >= 1<<32 {
		return 0, &ValidationError{Field: "event@errorcode", Value: s, Reason: "not a 32-bit decimal number"}
	}
	return ErrorCode(uint32(n)), nil
}

// AppStatus is the status attribute of a response <app>.
type AppStatus string

// App statuses. Omaha defines the first six; Nebraska answers the error-… reasons below, and
// update engines read none of them (they look at the updatecheck status).
const (
	AppStatusOK                 AppStatus = "ok"
	AppStatusRestricted         AppStatus = "restricted"
	AppStatusUnknownApplication AppStatus = "error-unknownApplication"
	AppStatusInvalidAppID       AppStatus = "error-invalidAppId"
	AppStatusInvalidVersion     AppStatus = "error-invalidVersion"
	AppStatusInternal           AppStatus = "error-internal"

	AppStatusNoPackageFound                  AppStatus = "error-noPackageFound"
	AppStatusUnknownApplicationOrGroup       AppStatus = "error-unknownApplicationOrGroup"
	AppStatusInstanceRegistrationFailed      AppStatus = "error-instanceRegistrationFailed"
	AppStatusMaxUpdatesPerPeriodLimitReached AppStatus = "error-maxUpdatesPerPeriodLimitReached"
	AppStatusMaxConcurrentUpdatesLimit       AppStatus = "error-maxConcurrentUpdatesLimitReached"
	AppStatusMaxTimedOutUpdatesLimit         AppStatus = "error-maxTimedOutUpdatesLimitReached"
	AppStatusUpdatesDisabled                 AppStatus = "error-updatesDisabled"
	AppStatusCouldNotCheckUpdatesStats       AppStatus = "error-couldNotCheckUpdatesStats"
	AppStatusUpdateInProgressOnInstance      AppStatus = "error-updateInProgressOnInstance"
	AppStatusFailedToRetrieveUpdatePackage   AppStatus = "error-failedToRetrieveUpdatePackageInfo"
)

func (s AppStatus) String() string { return string(s) }

// IsError reports whether the status is one of the error-… values (or anything but ok and
// restricted, which an old peer may invent).
func (s AppStatus) IsError() bool { return s != AppStatusOK && s != AppStatusRestricted }

// UpdateStatus is the status attribute of a response <updatecheck>. A Flatcar update engine
// accepts only UpdateStatusOK and UpdateStatusNoUpdate and reports anything else as
// ErrorCodeOmahaResponseInvalid: a server holds an update back with noupdate, never an error.
type UpdateStatus string

// Update-check statuses.
const (
	UpdateStatusNoUpdate             UpdateStatus = "noupdate"
	UpdateStatusOK                   UpdateStatus = "ok"
	UpdateStatusOSNotSupported       UpdateStatus = "error-osnotsupported"
	UpdateStatusUnsupportedProtocol  UpdateStatus = "error-unsupportedProtocol"
	UpdateStatusPluginRestrictedHost UpdateStatus = "error-pluginRestrictedHost"
	UpdateStatusHash                 UpdateStatus = "error-hash"
	UpdateStatusInternal             UpdateStatus = "error-internal"
)

func (s UpdateStatus) String() string { return string(s) }

// StatusError is an app-level error status: the server answered an <app> with an error
// status, or with an updatecheck status that is neither ok nor noupdate. Update engines report
// it as ErrorCodeOmahaResponseInvalid. A server can return it from its own logic and turn it
// into a response with NewAppErrorResponse.
type StatusError struct {
	AppID        string
	AppStatus    AppStatus
	UpdateStatus UpdateStatus // empty when the app had no updatecheck
}

func (e *StatusError) Error() string {
	if e.UpdateStatus == "" {
		return fmt.Sprintf("omaha: app %s: status %s", e.AppID, e.AppStatus)
	}
	return fmt.Sprintf("omaha: app %s: status %s, updatecheck status %s", e.AppID, e.AppStatus, e.UpdateStatus)
}

// ErrorCode is the code an update engine reports for this error.
func (e *StatusError) ErrorCode() ErrorCode { return ErrorCodeOmahaResponseInvalid }
