/* Not written yet: step 4/5 of the gateway (docs/gateway.md). */
#include "app.h"
int gw__share_routes(struct gw_app *app)
{
    (void)app;
    return 0;
}
