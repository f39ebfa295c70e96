// The module is its header (prefetch.h); a C target needs one source file.
#include "prefetch.h"
