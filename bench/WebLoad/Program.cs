using System.CommandLine;
using Pipeline.Bench.WebLoad;

var clients = new Option<int>("--clients") { Description = "HTTP clients watching the running run", DefaultValueFactory = _ => 50 };
var runs = new Option<int>("--runs") { Description = "Runs in the store, the running one included", DefaultValueFactory = _ => 500 };
var duration = new Option<int>("--duration") { Description = "Seconds measured", DefaultValueFactory = _ => 60 };
var warmUp = new Option<int>("--warm-up") { Description = "Seconds of load before measuring", DefaultValueFactory = _ => 15 };
var think = new Option<int>("--think-ms") { Description = "Each client's pause between requests (±50 %), ms; 0: none", DefaultValueFactory = _ => 1000 };
var circuits = new Option<int>("--circuits") { Description = "Chromium pages holding a Blazor circuit on the running run's page", DefaultValueFactory = _ => 5 };
var root = new RootCommand("Dashboard load benchmark: clients watching a running run on the real web host (see bench/README.md)")
    { clients, runs, duration, warmUp, think, circuits };
root.SetAction(async (p, ct) =>
{
    if (p.GetValue(clients) is < 1 or > 1000 || p.GetValue(runs) is < 1 or > 100_000 || p.GetValue(duration) < 1 || p.GetValue(warmUp) < 0
        || p.GetValue(think) < 0 || p.GetValue(circuits) is < 0 or > 50)
    {
        await Console.Error.WriteLineAsync("--clients must be 1–1000, --runs 1–100000, --duration at least 1, --warm-up and --think-ms at least 0, --circuits 0–50.");
        return 2;
    }
    var options = new WebLoadOptions(p.GetValue(clients), p.GetValue(runs), TimeSpan.FromSeconds(p.GetValue(warmUp)), TimeSpan.FromSeconds(p.GetValue(duration)),
        TimeSpan.FromMilliseconds(p.GetValue(think)), p.GetValue(circuits));
    return await WebLoadBench.RunAsync(options, Console.Out, ct);
});
return await root.Parse(args).InvokeAsync();
