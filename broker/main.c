/* lanyard CLI entry point (being built). */
#include <stdio.h>
int main(void)
{
    fputs("lanyard: not built yet\n", stderr);
    return 3;
}
