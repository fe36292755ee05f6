"""Every `reason` label value the sidecar reports, named once.

A source's failure (`FetchError(reason)`, and each unreadable file of a file source) is
counted in `klipper_exporter_source_errors_total{reason}`; an unreadable file is also shown
in `klipper_exporter_source_file_error{reason}`; a line the merge drops is counted in
`klipper_exporter_merge_dropped_total{reason}`. docs/sidecar.md lists each group in its
"Health metrics" table (tests/sidecar/test_reasons.py keeps the two in step). The values are
label values users alert on: changing one breaks their rules.
"""
from __future__ import annotations

from typing import Tuple

# Why a scrape of a source failed (errors_total).
TIMEOUT = "timeout"  # no answer within the source's `timeout` or the scrape's deadline
CONNECT = "connect"  # HTTP: the connection failed or was closed
TLS = "tls"  # HTTP: the TLS handshake failed
HTTP_STATUS = "http_status"  # HTTP: a status outside 200-299 (no redirect followed)
OVERSIZE = "oversize"  # a body, stdout or file above `max_bytes`
MISSING = "missing"  # file: nothing matches the path, or a match vanished or dangles
PERMISSION = "permission"  # file: not readable by this process
NOT_REGULAR = "not_regular"  # file: a directory, FIFO, socket or device (never opened)
SPAWN = "spawn"  # exec: the command could not be started
EXIT_STATUS = "exit_status"  # exec: the command exited with a status other than 0
STALE = "stale"  # exec_periodic: the last good run is older than `max_age`
ERROR = "error"  # anything else (an I/O error, a bug in a source)

# Every reason of errors_total, and those of one unreadable file (file_error, and errors_total).
FETCH_REASONS: Tuple[str, ...] = (TIMEOUT, CONNECT, TLS, HTTP_STATUS, OVERSIZE, MISSING,
                                  PERMISSION, NOT_REGULAR, SPAWN, EXIT_STATUS, STALE, ERROR)
FILE_REASONS: Tuple[str, ...] = (MISSING, PERMISSION, OVERSIZE, NOT_REGULAR, ERROR)

# Why the merge dropped lines of a source (merge_dropped_total).
INVALID_LINE = "invalid_line"  # not a sample, HELP, TYPE or comment line
INVALID_UTF8 = "invalid_utf8"  # a body that is not UTF-8
LINE_TOO_LONG = "line_too_long"  # a line above the parser's limit
INVALID_TYPE = "invalid_type"  # a TYPE line naming no known type
TYPE_CONFLICT = "type_conflict"  # a family typed otherwise by an earlier source
DUPLICATE_SERIES = "duplicate_series"  # a series (name and label set) already served
NAME_CONFLICT = "name_conflict"  # a family named like a histogram's or summary's member
ESCAPE_COLLISION = "escape_collision"  # UTF-8 names equal once escaped to legacy names

MERGE_REASONS: Tuple[str, ...] = (INVALID_LINE, INVALID_UTF8, LINE_TOO_LONG, INVALID_TYPE,
                                  TYPE_CONFLICT, DUPLICATE_SERIES, NAME_CONFLICT,
                                  ESCAPE_COLLISION)
