using Pipeline.Jobs.RunSpecs;
using Pipeline.Stages.NeuralFit;

namespace Pipeline.Jobs.Tests.RunSpecs;

/// <summary>The shipped presets are valid RunSpecs, and their neural stages are wired as the README says.</summary>
public class PresetTests
{
    internal static string PresetsFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "presets");
            if (File.Exists(Path.Combine(candidate, "smoke.json"))) return candidate;
        }
        throw new DirectoryNotFoundException("presets/ not found above the test binaries");
    }

    public static TheoryData<string> Names() => [.. Directory.GetFiles(PresetsFolder(), "*.json").Select(Path.GetFileNameWithoutExtension).OfType<string>().Order()];

    [Theory]
    [MemberData(nameof(Names))]
    public void Every_preset_is_a_valid_run_spec(string name)
    {
        var (_, plan, _) = RunSpecLoader.Load(File.ReadAllText(Path.Combine(PresetsFolder(), name + ".json")));
        Assert.NotEmpty(plan);
    }

    [Fact]
    public void Smoke_fits_its_trained_rgc_to_a_virtual_monkey_made_from_that_model()
    {
        var (_, plan, _) = RunSpecLoader.Load(File.ReadAllText(Path.Combine(PresetsFolder(), "smoke.json")));
        var monkey = plan.Single(s => s.Kind.Kind == "virtual-monkey");
        var fit = plan.Single(s => s.Kind.Kind == "neural-fit");
        Assert.Equal(["rgc"], monkey.DependsOn);
        Assert.Null(((VirtualMonkeyParams)monkey.Params).Model);
        Assert.Equal(["rgc", monkey.Name], fit.DependsOn);
        Assert.True(plan.ToList().IndexOf(fit) > plan.ToList().IndexOf(monkey));
    }

    [Fact]
    public void Fashion_mnist_fits_every_trained_model_to_one_monkey_from_a_separate_reference_model()
    {
        var (_, plan, _) = RunSpecLoader.Load(File.ReadAllText(Path.Combine(PresetsFolder(), "fashion-mnist.json")));
        var monkey = plan.Single(s => s.Kind.Kind == "virtual-monkey");
        Assert.Empty(monkey.DependsOn);
        Assert.NotNull(((VirtualMonkeyParams)monkey.Params).Model);
        var trained = plan.Where(s => s.Kind.Kind == "train").Select(s => s.Name).Order().ToList();
        var fitted = plan.Where(s => s.Kind.Kind == "neural-fit").Select(s => s.DependsOn.Single(d => d != monkey.Name)).Order().ToList();
        Assert.Equal(trained, fitted);
    }
}
