/* Switches callgrind's instrumentation on and off from inside the profiled process.
 * profile_inproc.py --instructions starts Python under callgrind with
 * --instr-atstart=no, loads this library with ctypes and instruments only the units
 * it measures: start-up and config loading then run several times faster, as
 * valgrind does not account for their instructions at all. Outside valgrind the
 * requests are no-ops. */
#include <valgrind/callgrind.h>

void lb_instr_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void lb_instr_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
