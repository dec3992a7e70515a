#!/bin/bash
# usage: run.sh config.yaml client-script.py
cfg=$1; client=$2
rm -f out/*
/opt/envoy-venv/bin/envoy -c "$cfg" --base-id 5 -l warning > envoy.log 2>&1 &
pid=$!
for i in $(seq 1 50); do curl -s -m 1 http://127.0.0.1:19100/ready >/dev/null 2>&1 && break; sleep 0.2; done
python3 "$client"
sleep 1.5
kill $pid; wait $pid
