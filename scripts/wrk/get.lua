-- wrk script: plain GETs of the target URL; prints the shared JSON report line.
dofile(os.getenv("WRK_REPORT") or "scripts/wrk/report.lua")
