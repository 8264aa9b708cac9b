#!/bin/busybox sh
# /init of the cca-cosim realm initramfs (busybox sh).  cosim.images.initramfs
# renders this template: each placeholder (a name between two at-signs) is
# replaced by the constant of that name in cosim/images/protocol.py (markers and
# kernel parameters, defined only there), MODULES by the module files in load order.  docs/images.md describes
# the protocol.  With COSIM_INIT_LIB set, sourcing this file only defines the
# functions (the unit tests run them with the host's sh).

MODULES="@MODULES@"
REPORTS=/sys/kernel/config/tsm/report

# The value of kernel parameter $1 in the command line (the last one wins).
cmdline_value() {
    value=
    for word in $(cat "${COSIM_CMDLINE:-/proc/cmdline}"); do
        case $word in
            "$1"=*) value=${word#*=} ;;
        esac
    done
    printf '%s' "$value"
}

# The bytes that the hex digits $1 stand for, on stdout (printf octal escapes:
# busybox has no xxd -r).
hex_to_bin() {
    hex=$1
    esc=
    while [ -n "$hex" ]; do
        rest=${hex#??}
        esc="$esc\\$(printf '%03o' "0x${hex%"$rest"}")"
        hex=$rest
    done
    printf "$esc"
}

# insmod /lib/modules/$1; one line on failure (arm_cca_guest fails outside a realm).
load_module() {
    if ! err=$(insmod "/lib/modules/$1" 2>&1); then
        echo "@MODULE_FAILED@ ${1%.ko}: ${err##*: }"
    fi
}

attest_failed() {
    echo "@ATTEST_FAILED@ $*"
}

# Fetch an attestation token for challenge $1 (hex) through configfs TSM
# reports and print it base64-encoded between the begin and end markers.
attest() {
    challenge=$1
    echo "@ATTEST_CHALLENGE@ $challenge"
    case $challenge in
        *[!0-9a-fA-F]*) attest_failed "the challenge is not hex"; return ;;
    esac
    if [ "${#challenge}" -ne $((2 * @CHALLENGE_SIZE@)) ]; then
        attest_failed "the challenge has ${#challenge} hex digits, not $((2 * @CHALLENGE_SIZE@))"
        return
    fi
    if [ ! -d "$REPORTS" ]; then
        attest_failed "$REPORTS is missing (no TSM report support)"
        return
    fi
    report=$REPORTS/cosim.$$
    if ! err=$(mkdir "$report" 2>&1); then
        attest_failed "mkdir $report: ${err##*: }"
        return
    fi
    if ! err=$( { hex_to_bin "$challenge" >"$report/inblob"; } 2>&1 ); then
        attest_failed "writing inblob: ${err##*: }"
    elif ! err=$(cat "$report/outblob" 2>&1 >/tmp/token); then
        attest_failed "reading outblob (provider '$(cat "$report/provider" 2>/dev/null)'): ${err##*: }"
    elif [ ! -s /tmp/token ]; then
        attest_failed "outblob is empty"
    else
        echo "@ATTEST_BEGIN@"
        base64 /tmp/token
        echo "@ATTEST_END@"
    fi
    rm -f /tmp/token
    rmdir "$report"
}

power_off() {
    poweroff -f
    echo "@POWEROFF_FAILED@"
    while :; do sleep 3600; done
}

main() {
    set -f      # the command line is split into words below: no globbing
    /bin/busybox --install -s /bin
    export PATH=/bin HOME=/root
    mount -t devtmpfs devtmpfs /dev
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    for module in $MODULES; do
        load_module "$module"
    done
    if [ -d /sys/kernel/config ]; then
        mount -t configfs configfs /sys/kernel/config
    fi
    echo "@INIT_MARKER@"

    challenge=$(cmdline_value @ATTEST_PARAM@)
    [ -z "$challenge" ] || attest "$challenge"

    encoded=$(cmdline_value @CMD_PARAM@)
    if [ -n "$encoded" ]; then
        if script=$(printf '%s' "$encoded" | base64 -d); then
            set +f
            sh -c "$script"
            status=$?
        else
            echo "cosim-init: @CMD_PARAM@ is not base64"
            status=2
        fi
        echo "@COMMAND_EXIT@ $status"
    else
        set +f
        setsid cttyhack sh
        echo "@SHELL_EXIT@"
    fi
    power_off
}

[ -n "${COSIM_INIT_LIB:-}" ] || main
