// torch.manual_seed and the default generator are process-wide: seeded tests must not interleave.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Pipeline.Stages.Tests
{
    internal static class TorchSetup
    {
        /// <summary>Tests call libtorch before they touch a Pipeline.Stages type: cap oneDNN first, as the product does.</summary>
        [System.Runtime.CompilerServices.ModuleInitializer]
        internal static void CapOneDnn() => Pipeline.Stages.Models.OneDnnIsa.Cap();
    }
}
