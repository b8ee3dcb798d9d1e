using Pipeline.Stages.Execution;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Execution;

public class TorchSettingsTests
{
    private sealed record Params(int? Threads) : ITorchStageParams
    {
        public string Device => "cpu";
        public IEnumerable<ValidationError> Validate() => TorchSettings.Validate(this);
    }

    /// <summary>Three stages in one process that all start before any computes (each one's start changes libtorch's
    /// process default), then interleave awaits: each reads its own count before and after every await.</summary>
    [Fact]
    public async Task Concurrent_torch_stages_keep_their_own_thread_count_across_awaits()
    {
        var started = new[] { Started(), Started(), Started() };
        var next = 0;
        async Task<List<int>> Stage(int? threads)
        {
            started[Interlocked.Increment(ref next) - 1].SetResult();
            await Task.WhenAll(started.Select(s => s.Task));
            var seen = new List<int>();
            for (var i = 0; i < 20; i++)
            {
                using (var scope = NewDisposeScope())
                {
                    // Large enough for libtorch to open a parallel region with this thread's count.
                    _ = nn.functional.conv2d(randn(8, 16, 32, 32), randn(16, 16, 3, 3)).sum().ToDouble();
                }
                seen.Add(torch.get_num_threads());
                await Task.Delay(2);
                await Task.Yield();
                seen.Add(torch.get_num_threads());
            }
            return seen;
        }

        var one = TorchSettings.RunOnOwnThreadAsync(new Params(1), () => Stage(1));
        var two = TorchSettings.RunOnOwnThreadAsync(new Params(2), () => Stage(2));
        var all = TorchSettings.RunOnOwnThreadAsync(new Params(null), () => Stage(null));

        Assert.All(await one, n => Assert.Equal(1, n));
        Assert.All(await two, n => Assert.Equal(2, n));
        Assert.All(await all, n => Assert.Equal(Environment.ProcessorCount, n));
    }

    private static TaskCompletionSource Started() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    [Fact]
    public async Task A_stage_that_throws_passes_its_exception_through()
    {
        var e = await Assert.ThrowsAsync<StageInputException>(() => TorchSettings.RunOnOwnThreadAsync<int>(new Params(1), async () =>
        {
            await Task.Yield();
            throw new StageInputException("bad");
        }));
        Assert.Equal("bad", e.Message);
    }
}
