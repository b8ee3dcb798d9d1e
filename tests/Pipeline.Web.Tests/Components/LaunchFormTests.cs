using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Jobs.RunSpecs;
using Pipeline.Web.Components.Controls;
using Pipeline.Web.Components.Pages;

namespace Pipeline.Web.Tests.Components;

public class LaunchFormTests : DashboardContext
{
    private const string BadSpec = """
        { "name": "bad", "stages": {
            "source": { "kind": "probe", "params": { "seconds": -1 } },
            "join": { "kind": "probe", "depends_on": ["nowhere"] } } }
        """;

    [Fact]
    public void A_refused_RunSpec_is_listed_field_by_field_in_the_CLIs_words()
    {
        var refusal = Assert.Throws<RunSpecException>(() => RunSpecLoader.Load(BadSpec));

        var list = Render<SpecErrors>(p => p.Add(s => s.Errors, refusal.Errors));

        var items = list.FindAll("[data-testid=spec-error]");
        Assert.Equal(refusal.Errors.Count, items.Count);
        Assert.Contains(items, i => i.GetAttribute("data-field") == "stages.source.params.seconds");
        // The same text the CLI prints after "Invalid RunSpec:" (ValidationError.ToString()).
        Assert.Equal(refusal.Errors.Select(e => e.ToString()), items.Select(i => i.TextContent.Trim()));
    }

    [Fact]
    public void Form_fields_are_the_params_records_json_names_with_the_plans_values()
    {
        var (_, plan, _) = RunSpecLoader.Load(File.ReadAllText(Path.Combine(PresetsFolder(), "probe-dag.json")));

        var fields = ParamsForm.For(plan);

        var seconds = Assert.Single(fields, f => f.Key == "stages.left.params.seconds");
        Assert.Equal(FieldKind.Number, seconds.Kind);
        Assert.Equal("2", seconds.Original);
        Assert.Contains(fields, f => f.Key == "stages.source.params.payload_bytes" && f.Kind == FieldKind.WholeNumber);
        Assert.Contains(fields, f => f.Key == "stages.source.params.note" && f.Kind == FieldKind.Text);
    }

    [Fact]
    public void Only_edited_fields_become_set_overrides_and_strings_stay_strings()
    {
        var (_, plan, _) = RunSpecLoader.Load(File.ReadAllText(Path.Combine(PresetsFolder(), "probe-dag.json")));
        var fields = ParamsForm.For(plan);

        var overrides = ParamsForm.Overrides(fields, new Dictionary<string, string?>
        {
            ["stages.left.params.seconds"] = "2",      // unchanged
            ["stages.right.params.seconds"] = "0.5",
            ["stages.source.params.note"] = "7",
        });

        Assert.Equal(["stages.source.params.note=\"7\"", "stages.right.params.seconds=0.5"], overrides);
        var (_, edited, _) = RunSpecLoader.Load(File.ReadAllText(Path.Combine(PresetsFolder(), "probe-dag.json")), overrides);
        Assert.Equal(0.5, ((Pipeline.Stages.Diagnostics.ProbeParams)edited.Single(s => s.Name == "right").Params).Seconds);
        Assert.Equal("7", ((Pipeline.Stages.Diagnostics.ProbeParams)edited.Single(s => s.Name == "source").Params).Note);
    }

    [Fact]
    public void Preview_of_an_out_of_range_edit_shows_the_launchers_message_at_that_field()
    {
        AddEmbeddedJobs();
        SignInAsOperator();
        RenderPopoverHost();
        Services.GetRequiredService<NavigationManager>().NavigateTo("/launch?preset=probe-dag");
        var page = Render<Launch>();

        page.WaitForElement("[data-testid=params-source] .mud-expand-panel-header").Click();
        page.Find("input[data-testid=param-source-seconds]").Input("-1");
        page.Find("[data-testid=preview-button]").Click();

        page.WaitForAssertion(() =>
        {
            var error = page.Find("[data-testid=spec-error]");
            Assert.Equal("stages.source.params.seconds", error.GetAttribute("data-field"));
            Assert.Equal("stages.source.params.seconds: must be between 0 and 86400", error.TextContent.Trim());
        });
        Assert.Empty(page.FindAll("[data-testid=preview]"));
    }

    [Fact]
    public async Task A_viewer_sees_no_launch_button_and_the_server_side_check_refuses_a_launch()
    {
        AddEmbeddedJobs();
        SignInAsViewer();
        RenderPopoverHost();
        Services.GetRequiredService<NavigationManager>().NavigateTo("/launch?preset=probe-dag");
        var page = Render<Launch>();

        page.WaitForElement("[data-testid=params-source]");
        Assert.Empty(page.FindAll("[data-testid=launch-button]"));
        Assert.NotNull(page.Find("[data-testid=launch-not-allowed]"));
        var gate = Services.GetRequiredService<OperatorGate>();
        var launched = false;
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => gate.RunAsync(() =>
        {
            launched = true;
            return Task.CompletedTask;
        }));
        Assert.False(launched);
    }
}
