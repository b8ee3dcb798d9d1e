using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.Engine;

namespace Pipeline.Jobs.Tests.Engine;

/// <summary>`runs retry|cancel` and `stages retry|cancel` on an id that was never issued say that it does not exist, not what the run lacks.</summary>
public class UnknownIdTests
{
    [Fact]
    public async Task Controlling_a_run_or_stage_that_does_not_exist_names_the_missing_id()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var host = await env.StartHostAsync(worker: false);
        var engine = host.Services.GetRequiredService<StageEngine>();

        Assert.Equal("Run 999999 does not exist.", (await Assert.ThrowsAsync<EngineException>(() => engine.RetryRunAsync(999999))).Message);
        Assert.Equal("Run 999999 does not exist.", (await Assert.ThrowsAsync<EngineException>(() => engine.CancelRunAsync(999999))).Message);
        Assert.Equal("Stage 999999 does not exist.", (await Assert.ThrowsAsync<EngineException>(() => engine.RetryAsync(999999))).Message);
        Assert.Equal("Stage 999999 does not exist.", (await Assert.ThrowsAsync<EngineException>(() => engine.CancelAsync(999999))).Message);
        Assert.Equal("Stage 999999 does not exist.", (await Assert.ThrowsAsync<EngineException>(() => engine.RerunAsync(999999))).Message);
        Assert.True((await Assert.ThrowsAsync<EngineException>(() => engine.RetryRunAsync(999999))).IsNotFound);
    }
}
