#include <cblas.h>
/* OpenBLAS extensions (declared in its cblas.h too, repeated for older headers). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
