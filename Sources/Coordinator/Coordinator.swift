import JobStore
