// OpenBLAS's CBLAS interface (cblas_sgemm) and its thread-count controls.
#include <cblas.h>
