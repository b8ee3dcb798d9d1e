// torch.manual_seed and the default generator are process-wide: seeded tests must not interleave.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
