using System.Diagnostics;
using System.Text.RegularExpressions;
using Pipeline.Jobs.RunSpecs;
using Xunit.Abstractions;

namespace Pipeline.Jobs.Tests.RunSpecs;

/// <summary>
/// Whatever a RunSpec holds, loading it either succeeds or fails with a <see cref="RunSpecException"/> (the CLI's exit 2,
/// the API's 400) whose errors name a field and speak JSON, never the CLR.
/// </summary>
public partial class RunSpecMutationTests(ITestOutputHelper output)
{
    private const int Seed = 2018;
    private const int CasesPerPreset = 120;

    [GeneratedRegex(@"System\.|`1")]
    private static partial Regex ClrTypeName();

    /// <summary>What a refusal owes its reader; empty when it pays it.</summary>
    internal static IEnumerable<string> BrokenPromises(RunSpecException e)
    {
        if (e.Errors.Count == 0) yield return "no errors listed";
        foreach (var error in e.Errors)
        {
            if (string.IsNullOrWhiteSpace(error.Field)) yield return $"an error without a field: {error}";
            if (string.IsNullOrWhiteSpace(error.Message)) yield return $"an error without a message: {error}";
            if (ClrTypeName().IsMatch(error.Field) || ClrTypeName().IsMatch(error.Message)) yield return $"a CLR type name: {error}";
        }
    }

    [Fact]
    public void Every_mutated_preset_loads_or_is_refused_with_errors_that_name_fields_in_json_terms()
    {
        var presets = Directory.GetFiles(PresetTests.PresetsFolder(), "*.json").Order(StringComparer.Ordinal)
            .Select(f => (Name: Path.GetFileNameWithoutExtension(f), Json: File.ReadAllText(f))).ToList();
        var failures = new List<string>();
        var (cases, loaded, refused) = (0, 0, 0);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < CasesPerPreset; i++)
        {
            foreach (var (name, json) in presets)
            {
                var caseSeed = (Seed * 100_000) + cases++;
                var mutated = new RunSpecMutator(caseSeed).Mutate(json);
                try
                {
                    RunSpecLoader.Load(mutated.Json, mutated.Overrides);
                    loaded++;
                }
                catch (RunSpecException e)
                {
                    refused++;
                    failures.AddRange(BrokenPromises(e).Select(p => $"{name} #{caseSeed} ({mutated.Description}): {p}"));
                }
                catch (Exception e)
                {
                    failures.Add($"{name} #{caseSeed} ({mutated.Description}): {e.GetType().Name}: {e.Message}");
                }
            }
        }
        output.WriteLine($"{cases} mutated RunSpecs in {clock.Elapsed.TotalSeconds:F1} s: {loaded} loaded, {refused} refused");

        Assert.True(failures.Count == 0, $"{failures.Count} mutated RunSpecs broke the promise:\n" + string.Join("\n", failures.Take(30)));
        Assert.True(cases >= 500, "too few cases to mean much");
        Assert.InRange(refused, cases / 2, cases - 1); // the mutator really breaks things, and not everything it does is fatal
    }
}
