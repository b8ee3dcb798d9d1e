using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Jobs.Hosting;
using Pipeline.Jobs.RunStore;
using Pipeline.Jobs.Tests.Engine;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Tests.Hosting;

public class HostingTests
{
    [Fact]
    public void A_worker_given_one_queue_takes_jobs_from_that_queue_only()
    {
        using var host = PipelineHost.Build(worker: false, new Dictionary<string, string?> { ["Pipeline:Queues:0"] = "gpu", ["Pipeline:DataFolder"] = Path.GetTempPath() });

        Assert.Equal(["gpu"], host.Services.GetRequiredService<IOptions<PipelineOptions>>().Value.ResolvedQueues);
    }

    [Fact]
    public void The_default_data_folder_is_the_checkouts_own_wherever_in_it_a_process_starts()
    {
        var checkout = Directory.CreateTempSubdirectory("pipeline-checkout-");
        try
        {
            File.WriteAllText(Path.Combine(checkout.FullName, "Pipeline.sln"), "");
            var web = Directory.CreateDirectory(Path.Combine(checkout.FullName, "src", "Web")).FullName;
            var expected = Path.Combine(checkout.FullName, ".pipeline");

            Assert.Equal(expected, PipelineOptions.ResolveDataFolder(null, [checkout.FullName]));
            Assert.Equal(expected, PipelineOptions.ResolveDataFolder(null, [web])); // `dotnet run --project src/Web` starts in src/Web
            Assert.EndsWith("convrnn-pipeline", PipelineOptions.ResolveDataFolder(null, [Path.GetTempPath()]), StringComparison.Ordinal);
            Assert.Equal(Path.GetFullPath("elsewhere"), PipelineOptions.ResolveDataFolder("elsewhere", [web]));
        }
        finally
        {
            checkout.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_worker_that_starts_while_postgres_is_unreachable_waits_for_it_and_then_runs_stages()
    {
        await using var env = await PipelineTestEnvironment.CreateAsync();
        var real = new NpgsqlConnectionStringBuilder(env.ConnectionString);
        using var proxy = new TcpForwarder(real.Host!, real.Port);
        var throughProxy = new NpgsqlConnectionStringBuilder(env.ConnectionString) { Host = "127.0.0.1", Port = proxy.Port, Pooling = false };

        var worker = env.StartWorker("worker-late", settings: new Dictionary<string, string?> { ["ConnectionStrings:Postgres"] = throughProxy.ConnectionString });
        var clock = Stopwatch.StartNew();
        while (!worker.Output.Contains("Waiting for PostgreSQL at 127.0.0.1", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(200);
        Assert.Contains("Waiting for PostgreSQL at 127.0.0.1", worker.Output, StringComparison.Ordinal);
        await Task.Delay(2000);
        Assert.False(worker.HasExited, worker.Output);

        proxy.Start();
        var client = await env.StartHostAsync(worker: false);
        var runId = await PipelineTestEnvironment.LaunchAsync(client, Specs.Probe(("only", "{}", [])));
        var run = await PipelineTestEnvironment.WaitForRunAsync(client, runId, TimeSpan.FromSeconds(90));

        Assert.True(run.Status == RunStatus.Succeeded, PipelineTestEnvironment.Describe(run) + worker.Output);
        Assert.EndsWith("worker-late", run.Stages[0].History.Last(h => h.To == StageStatus.Running).Reason, StringComparison.Ordinal);
    }
}
