namespace Pipeline.Stages.Tests.Models.Cells;

/// <summary>
/// The random generator, the thread count and module initialisation are process-wide in libtorch: a test that seeds
/// and then builds a cell must not run while another test draws random numbers. Tests in this collection run alone,
/// after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchGlobalStateCollection
{
    public const string Name = "torch global state";
}
