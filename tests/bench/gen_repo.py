#!/usr/bin/env python3
"""Writes the policy repo that ../shared/bench/ compares the peers on: N header routes
`x-user: user-i` -> reviews v2, then a catch-all split 50/50 between v2 and v3.

usage: gen_repo.py N DIR V1_PORT V2_PORT V3_PORT
"""
import os
import sys


def main() -> None:
    n, out, v1, v2, v3 = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "services.yaml"), "w") as f:
        f.write(f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  endpoints:
  - {{address: 127.0.0.1, ports: {{http: {v1}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{http: {v2}}}, labels: {{version: v2}}}}
  - {{address: 127.0.0.1, ports: {{http: {v3}}}, labels: {{version: v3}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
  - {{name: v3, labels: {{version: v3}}}}
""")
    with open(os.path.join(out, "reviews.yaml"), "w") as f:
        # wrk sends `Host: 127.0.0.1:<port>`: an IP address is a valid VirtualService host.
        f.write("""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews, 127.0.0.1]
  http:
""")
        for i in range(n):
            f.write(f"""  - match:
    - headers:
        x-user: {{exact: user-{i}}}
    route:
    - destination: {{host: reviews, subset: v2}}
""")
        f.write("""  - route:
    - destination: {host: reviews, subset: v2}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
""")


if __name__ == "__main__":
    main()
