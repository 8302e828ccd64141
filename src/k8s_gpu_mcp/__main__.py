from k8s_gpu_mcp.cli import main

raise SystemExit(main())
