package engine

import (
	"time"
)

// Status is one of Flatcar's update_engine status names. The strings are the wire values of
// the control API and what locksmith-style tools expect.
type Status string

// The statuses, in the order an update passes through them.
const (
	StatusIdle                Status = "UPDATE_STATUS_IDLE"
	StatusCheckingForUpdate   Status = "UPDATE_STATUS_CHECKING_FOR_UPDATE"
	StatusUpdateAvailable     Status = "UPDATE_STATUS_UPDATE_AVAILABLE"
	StatusDownloading         Status = "UPDATE_STATUS_DOWNLOADING"
	StatusVerifying           Status = "UPDATE_STATUS_VERIFYING"
	StatusFinalizing          Status = "UPDATE_STATUS_FINALIZING"
	StatusUpdatedNeedReboot   Status = "UPDATE_STATUS_UPDATED_NEED_REBOOT"
	StatusReportingErrorEvent Status = "UPDATE_STATUS_REPORTING_ERROR_EVENT"
)

// Statuses lists every status.
func Statuses() []Status {
	return []Status{StatusIdle, StatusCheckingForUpdate, StatusUpdateAvailable, StatusDownloading,
		StatusVerifying, StatusFinalizing, StatusUpdatedNeedReboot, StatusReportingErrorEvent}
}

// transitions is the table of the package doc: from → allowed next statuses.
func transitions(from Status) []Status {
	switch from {
	case StatusIdle:
		return []Status{StatusCheckingForUpdate, StatusUpdatedNeedReboot}
	case StatusCheckingForUpdate:
		return []Status{StatusIdle, StatusUpdateAvailable, StatusReportingErrorEvent}
	case StatusUpdateAvailable:
		return []Status{StatusDownloading, StatusReportingErrorEvent}
	case StatusDownloading:
		return []Status{StatusVerifying, StatusReportingErrorEvent}
	case StatusVerifying:
		return []Status{StatusFinalizing, StatusReportingErrorEvent}
	case StatusFinalizing:
		return []Status{StatusUpdatedNeedReboot, StatusReportingErrorEvent}
	case StatusUpdatedNeedReboot:
		return []Status{StatusIdle}
	case StatusReportingErrorEvent:
		return []Status{StatusIdle}
	}
	return nil
}

// CanMove reports whether the table allows from → to.
func CanMove(from, to Status) bool {
	for _, s := range transitions(from) {
		if s == to {
			return true
		}
	}
	return false
}

// Settled reports whether s is a resting status (nothing in flight).
func (s Status) Settled() bool {
	return s == StatusIdle || s == StatusUpdatedNeedReboot
}

// Snapshot is what the control API reports (update_engine_client -status, plus more).
type Snapshot struct {
	Status          Status    `json:"status"`
	LastChecked     time.Time `json:"last_checked_time,omitzero"`
	NextCheck       time.Time `json:"next_check_time,omitzero"`
	Progress        float64   `json:"progress"` // 0..1
	BytesDone       int64     `json:"bytes_done"`
	BytesTotal      int64     `json:"bytes_total"`
	CurrentVersion  string    `json:"current_version"`
	NewVersion      string    `json:"new_version,omitempty"`
	NewSize         int64     `json:"new_size,omitempty"`
	ActivePartition string    `json:"active_partition,omitempty"`
	TargetPartition string    `json:"target_partition,omitempty"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorCode   uint32    `json:"last_error_code,omitempty"`
	RebootStrategy  string    `json:"reboot_strategy,omitempty"`
	// RebootPostponed is why the last reboot attempt was postponed (a failed pre-reboot
	// hook); empty once a reboot is requested or the status is reset.
	RebootPostponed string `json:"reboot_postponed,omitempty"`
	Seq             uint64 `json:"seq"` // increases on every change
}
