// Hangfire keeps its configuration in static state, and the engine tests start worker processes that share the two
// cores: test classes run one after another.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
