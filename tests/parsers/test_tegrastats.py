"""edgeprof.parsers.tegrastats against real tegrastats lines (see logs/tegrastats/SOURCES.md)."""

from pathlib import Path

import pytest

from edgeprof.parsers.tegrastats import TegrastatsSample, invocations, parse, parse_line

LOGS = Path(__file__).parent / "logs" / "tegrastats"

SAMPLE_KEYS = {
    "timestamp", "ram_used_mb", "ram_total_mb", "swap_used_mb", "cpus", "emc_load_pct", "emc_freq_mhz",
    "gpu_load_pct", "gpu_freq_mhz", "temps_c", "rails_mw",
}
OFF = None


def cpus(text):
    """"1%@345,off" -> [{"load_pct": 1, "freq_mhz": 345}, None] (test shorthand only)."""
    result = []
    for entry in text.split(","):
        if entry == "off":
            result.append(None)
        else:
            load, _, freq = entry.partition("@")
            result.append({"load_pct": int(load.rstrip("%")), "freq_mhz": int(freq) if freq else None})
    return result


def rails(**readings):
    return {name: {"cur": cur, "avg": avg} for name, (cur, avg) in readings.items()}


# The first line of every fixture, every field, as printed in the file.
FIRST_LINES = {
    "tx1_r28_datadog_agent.txt": dict(
        timestamp=None, ram_used_mb=1179, ram_total_mb=3983, swap_used_mb=None,
        cpus=cpus("1%@102,4%@102,0%@102,0%@102"), emc_load_pct=7, emc_freq_mhz=408, gpu_load_pct=0, gpu_freq_mhz=76,
        temps_c={"AO": 42.5, "CPU": 37.5, "GPU": 39.0, "PLL": 37.0, "Tdiode": 42.75, "PMIC": 100.0, "Tboard": 42.0,
                 "thermal": 38.5},
        rails_mw=rails(VDD_IN=(2532, 2698), VDD_CPU=(76, 178), VDD_GPU=(19, 19)),
    ),
    "tx2_r28_2_gustavz_issue24.txt": dict(
        timestamp=None, ram_used_mb=1685, ram_total_mb=7854, swap_used_mb=278,
        cpus=cpus("0%@1303,0%@345,0%@345,0%@1419,0%@1420,0%@1421"), emc_load_pct=0, emc_freq_mhz=1866,
        gpu_load_pct=0, gpu_freq_mhz=140,
        temps_c={"BCPU": 41.0, "MCPU": 41.0, "GPU": 39.0, "PLL": 41.0, "Tboard": 37.0, "Tdiode": 37.25, "PMIC": 100.0,
                 "thermal": 39.9},
        rails_mw=rails(VDD_IN=(1931, 1931), VDD_CPU=(231, 231), VDD_GPU=(154, 154), VDD_SOC=(385, 385),
                       VDD_WIFI=(38, 38), VDD_DDR=(326, 326)),
    ),
    "tx2_r32_findhao_txutils_issue3.txt": dict(
        timestamp=None, ram_used_mb=2020, ram_total_mb=7852, swap_used_mb=None,
        cpus=cpus("9%@345,21%@345,25%@345,3%@345,1%@345,1%@345"), emc_load_pct=0, emc_freq_mhz=None,
        gpu_load_pct=0, gpu_freq_mhz=None,
        temps_c={"PLL": 42.5, "MCPU": 42.5, "PMIC": 100.0, "Tboard": 40.0, "GPU": 41.0, "BCPU": 42.5, "thermal": 41.9,
                 "Tdiode": 41.25},
        rails_mw=rails(VDD_SYS_GPU=(153, 158), VDD_SYS_SOC=(536, 547), VDD_4V0_WIFI=(633, 527), VDD_IN=(3140, 3208),
                       VDD_SYS_CPU=(536, 590), VDD_SYS_DDR=(557, 601)),
    ),
    "tx2_r32_datadog_agent.txt": dict(
        timestamp=None, ram_used_mb=2344, ram_total_mb=7852, swap_used_mb=0,
        cpus=cpus("1%@345,off,off,1%@345,0%@345,2%@345"), emc_load_pct=4, emc_freq_mhz=1600,
        gpu_load_pct=0, gpu_freq_mhz=624,
        temps_c={"PLL": 37.5, "MCPU": 37.5, "PMIC": 100.0, "Tboard": 32.0, "GPU": 35.0, "BCPU": 37.5, "thermal": 36.5,
                 "Tdiode": 34.25},
        rails_mw=rails(VDD_SYS_GPU=(152, 152), VDD_SYS_SOC=(687, 687), VDD_4V0_WIFI=(0, 0), VDD_IN=(3056, 3056),
                       VDD_SYS_CPU=(152, 152), VDD_SYS_DDR=(883, 883)),
    ),
    "tx2_jp46_nonroot_jetson_stats_issue187.txt": dict(
        timestamp=None, ram_used_mb=1689, ram_total_mb=3825, swap_used_mb=0,
        cpus=cpus("3%@345,off,off,0%@345,1%@345,1%@345"), emc_load_pct=0, emc_freq_mhz=None,
        gpu_load_pct=0, gpu_freq_mhz=None,
        temps_c={"PLL": 50.5, "MCPU": 50.5, "PMIC": 50.0, "GPU": 50.0, "BCPU": 50.5, "thermal": 50.3},
        rails_mw=None,
    ),
    "nano_r32_datadog_agent.txt": dict(
        timestamp=None, ram_used_mb=534, ram_total_mb=3964, swap_used_mb=5,
        cpus=cpus("16%@204,9%@204,0%@204,0%@204"), emc_load_pct=0, emc_freq_mhz=204, gpu_load_pct=0, gpu_freq_mhz=76,
        temps_c={"PLL": 34.0, "CPU": 36.5, "PMIC": 100.0, "GPU": 36.0, "AO": 39.5, "thermal": 36.25},
        rails_mw=rails(POM_5V_IN=(1022, 1022), POM_5V_GPU=(0, 0), POM_5V_CPU=(204, 204)),
    ),
    "agx_xavier_jp42_gtop_pr7.txt": dict(
        timestamp=None, ram_used_mb=14700, ram_total_mb=15692, swap_used_mb=898,
        cpus=cpus(",".join(["0%@1190"] * 8)), emc_load_pct=0, emc_freq_mhz=None, gpu_load_pct=0, gpu_freq_mhz=None,
        temps_c={"AO": 30.0, "GPU": 30.5, "Tboard": 31.0, "Tdiode": 32.0, "AUX": 30.5, "CPU": 31.5, "thermal": 30.8,
                 "PMIC": 100.0},
        rails_mw=rails(GPU=(463, 463), CPU=(618, 618), SOC=(2936, 2936), CV=(0, 0), VDDRQ=(309, 309),
                       SYS5V=(3306, 3306)),
    ),
    "agx_xavier_r32_datadog_agent.txt": dict(
        timestamp=None, ram_used_mb=721, ram_total_mb=31927, swap_used_mb=0,
        cpus=cpus("2%@1190,0%@1190,0%@1190,0%@1190,off,off,off,off"), emc_load_pct=0, emc_freq_mhz=665,
        gpu_load_pct=0, gpu_freq_mhz=318,
        temps_c={"AO": 37.5, "GPU": 37.5, "Tdiode": 40.0, "PMIC": 100.0, "AUX": 36.0, "CPU": 37.5, "thermal": 36.9,
                 "Tboard": 37.0},
        rails_mw=rails(GPU=(0, 0), CPU=(311, 311), SOC=(932, 932), CV=(0, 0), VDDRQ=(621, 621), SYS5V=(1482, 1482)),
    ),
    "xavier_nx_r32_datadog_agent.txt": dict(
        timestamp=None, ram_used_mb=4412, ram_total_mb=7772, swap_used_mb=139,
        cpus=cpus("9%@1190,6%@1190,6%@1190,5%@1190,4%@1190,8%@1267"), emc_load_pct=10, emc_freq_mhz=1600,
        gpu_load_pct=62, gpu_freq_mhz=306,
        temps_c={"AO": 41.5, "GPU": 43.0, "PMIC": 100.0, "AUX": 41.5, "CPU": 43.5, "thermal": 42.55},
        rails_mw=rails(VDD_IN=(4067, 4067), VDD_CPU_GPU_CV=(738, 738), VDD_SOC=(1353, 1353)),
    ),
    "orin_16gb_mw_units_datadog_agent.txt": dict(
        timestamp=None, ram_used_mb=6334, ram_total_mb=15388, swap_used_mb=491,
        cpus=cpus("6%@729,9%@729,5%@729,16%@729,off,off,off,off"), emc_load_pct=0, emc_freq_mhz=2133,
        gpu_load_pct=0, gpu_freq_mhz=611,
        temps_c={"CV0": 45.812, "CPU": 47.937, "SOC2": 46.093, "SOC0": 46.968, "CV1": 46.406, "GPU": 45.875,
                 "tj": 48.875, "SOC1": 48.875, "CV2": 45.75},
        rails_mw=rails(VDD_IN=(5299, 5299), VDD_CPU_GPU_CV=(773, 773), VDD_SOC=(1424, 1424)),
    ),
    "agx_orin_jp51_catid_blog.txt": dict(
        timestamp="04-24-2023 00:01:24", ram_used_mb=1282, ram_total_mb=62795, swap_used_mb=0,
        cpus=cpus(",".join(["0%@729"] * 12)), emc_load_pct=0, emc_freq_mhz=2133, gpu_load_pct=0, gpu_freq_mhz=0,
        temps_c={"CV0": None, "CPU": 42.593, "Tboard": 32.0, "SOC2": 39.343, "Tdiode": 33.25, "SOC0": 39.375,
                 "CV1": None, "GPU": None, "tj": 42.593, "SOC1": 40.468, "CV2": None},
        rails_mw=rails(VDD_GPU_SOC=(2399, 2399), VDD_CPU_CV=(400, 400), VIN_SYS_5V0=(4032, 4032), NC=(0, 0),
                       VDDQ_VDD2_1V8AO=(301, 301)),
    ),
    "agx_orin_jp6_gpc_list_jetson_exporter_issue14.txt": dict(
        timestamp="04-11-2025 10:36:27", ram_used_mb=4321, ram_total_mb=62801, swap_used_mb=19,
        cpus=cpus(",".join(["0%@729"] * 12)), emc_load_pct=0, emc_freq_mhz=2133, gpu_load_pct=0, gpu_freq_mhz=0,
        temps_c={"CV0": None, "CPU": 44.562, "Tboard": 32.0, "SOC2": 40.093, "Tdiode": 33.0, "SOC0": 41.093,
                 "CV1": None, "GPU": None, "tj": 44.343, "SOC1": 41.25, "CV2": None},
        rails_mw=rails(VDD_GPU_SOC=(2340, 2340), VDD_CPU_CV=(390, 390), VIN_SYS_5V0=(4025, 4025), NC=(0, 0),
                       VDDQ_VDD2_1V8AO=(301, 301)),
    ),
    "orin_nano_jp6_jetson_stats_issue624.txt": dict(
        timestamp="05-15-2025 18:30:28", ram_used_mb=6982, ram_total_mb=7620, swap_used_mb=2640,
        cpus=cpus("97%@1984,95%@1984,95%@1984,91%@1984,88%@1984,93%@247"), emc_load_pct=18, emc_freq_mhz=3199,
        gpu_load_pct=84, gpu_freq_mhz=713,
        temps_c={"cv0": 63.031, "cpu": 65.562, "soc2": 64.156, "soc0": 63.031, "cv1": 62.937, "gpu": 63.5,
                 "tj": 65.562, "soc1": 64.718, "cv2": 60.875},
        rails_mw=rails(VDD_IN=(17946, 15710), VDD_CPU_GPU_CV=(8896, 7585), VDD_SOC=(3923, 3515)),
    ),
    "agx_orin_r36_spaced_datadog_agent.txt": dict(
        timestamp=None, ram_used_mb=29114, ram_total_mb=30697, swap_used_mb=4915,
        cpus=cpus("3%@729,4%@729,0%@729,1%@729,0%@2201,100%@2201,1%@2201,0%@2201,100%@2201,0%@2201,0%@2201,0%@2201"),
        emc_load_pct=1, emc_freq_mhz=2133, gpu_load_pct=0, gpu_freq_mhz=305,
        temps_c={"cpu": 53.062, "soc2": 48.25, "soc0": 48.843, "gpu": 47.812, "tj": 53.062, "soc1": 48.968},
        rails_mw=rails(VDD_GPU_SOC=(3205, 3205), VDD_CPU_CV=(4405, 4405), VIN_SYS_5V0=(4767, 4767)),
    ),
    "agx_orin_no_emc_datadog_agent.txt": dict(
        timestamp=None, ram_used_mb=2448, ram_total_mb=62840, swap_used_mb=0,
        cpus=cpus(",".join(["0%@2201"] * 12)), emc_load_pct=None, emc_freq_mhz=None, gpu_load_pct=0, gpu_freq_mhz=None,
        temps_c={"cpu": 42.0, "soc2": 37.843, "soc0": 39.187, "gpu": 37.75, "tj": 42.0, "soc1": 37.937},
        rails_mw=rails(VDD_GPU_SOC=(4940, 4940), VDD_CPU_CV=(988, 988), VIN_SYS_5V0=(4442, 4442)),
    ),
    "agx_orin_r36_4_4_tegra_exporter.txt": dict(
        timestamp="05-09-2026 18:42:06", ram_used_mb=18207, ram_total_mb=62841, swap_used_mb=86,
        cpus=cpus("14%@2188,5%@2112,8%@2035,14%@2201,46%@1267,47%@1267,2%@1267,10%@1267,4%@1036,5%@1036,6%@1036,10%@1036"),
        emc_load_pct=3, emc_freq_mhz=2133, gpu_load_pct=0, gpu_freq_mhz=0,
        temps_c={"cpu": 52.562, "soc2": 48.437, "soc0": 49.093, "tj": 52.562, "soc1": 49.656},
        rails_mw=rails(VDD_GPU_SOC=(2412, 2412), VDD_CPU_CV=(1607, 1607), VIN_SYS_5V0=(4707, 4707)),
    ),
    "agx_orin_r39_2_off_cores_tegra_exporter.txt": dict(
        timestamp="07-31-2026 14:58:05", ram_used_mb=4714, ram_total_mb=62878, swap_used_mb=0,
        cpus=cpus("78%@1728,33%@1728,46%@1728,55%@1728,49%@729,48%@729,37%@729,57%@729,off,off,off,off"),
        emc_load_pct=2, emc_freq_mhz=2133, gpu_load_pct=0, gpu_freq_mhz=0,
        temps_c={"cpu": 50.718, "soc2": 47.656, "soc0": 47.156, "tj": 50.718, "soc1": 49.0},
        rails_mw=rails(VDD_GPU_SOC=(2265, 2265), VDD_CPU_CV=(2643, 2643), VIN_SYS_5V0=(4722, 4722)),
    ),
    "thor_r38_4_tegra_exporter.txt": dict(
        timestamp="05-17-2026 10:00:32", ram_used_mb=4208, ram_total_mb=125773, swap_used_mb=0,
        cpus=cpus("1%@972,0%@972,0%@972,0%@972,1%@972,0%@972,1%@972,1%@972,0%@972,0%@972,3%@972,0%@972,0%@972,1%@972"),
        emc_load_pct=0, emc_freq_mhz=665, gpu_load_pct=None, gpu_freq_mhz=0,
        temps_c={"cpu": 34.468, "tj": 34.5, "soc012": 33.781, "soc345": 34.5},
        rails_mw=rails(VDD_GPU=(0, 0), VDD_CPU_SOC_MSS=(4165, 4165), VIN_SYS_5V0=(4126, 4126)),
    ),
    "thor_r39_2_tegra_exporter.txt": dict(
        timestamp="07-23-2026 15:29:26", ram_used_mb=9101, ram_total_mb=125811, swap_used_mb=0,
        cpus=cpus("39%@2160,20%@2160,16%@1944,15%@1944,17%@972,15%@972,19%@2214,22%@2214,13%@2430,20%@2430,"
                  "26%@972,19%@972,15%@1836,22%@1836"),
        emc_load_pct=7, emc_freq_mhz=3200, gpu_load_pct=None, gpu_freq_mhz=314,
        temps_c={"cpu": 34.843, "tj": 35.906, "soc012": 34.437, "gpu": 35.906, "soc345": 34.406},
        rails_mw=rails(VDD_GPU=(4925, 4925), VDD_CPU_SOC_MSS=(8710, 8710), VIN_SYS_5V0=(6767, 6767)),
    ),
    # L4T R24 and R28.1 (TX1): one clock for the whole CPU list, "EMC"/"GR3D" without "_FREQ", no sensors/rails.
    "tx1_r24_legacy_avp_vde_edp_sudo_prompt_blog_573.txt": dict(
        timestamp=None, ram_used_mb=277, ram_total_mb=3854, swap_used_mb=0, cpus=cpus("0%@1912,0%@1912,0%@1912,0%@1912"),
        emc_load_pct=0, emc_freq_mhz=1600, gpu_load_pct=0, gpu_freq_mhz=76, temps_c=None, rails_mw=None,
    ),
    "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_a5a5cc7.txt": dict(
        timestamp=None, ram_used_mb=3468, ram_total_mb=3983, swap_used_mb=873, cpus=cpus("17%@408,13%@408,29%@408,5%@408"),
        emc_load_pct=1, emc_freq_mhz=408, gpu_load_pct=3, gpu_freq_mhz=76, temps_c=None, rails_mw=None,
    ),
    "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_ae7da25.txt": dict(
        timestamp=None, ram_used_mb=3691, ram_total_mb=3983, swap_used_mb=2780, cpus=cpus("0%@1734,0%@1734,0%@1734,0%@1734"),
        emc_load_pct=0, emc_freq_mhz=1600, gpu_load_pct=0, gpu_freq_mhz=998, temps_c=None, rails_mw=None,
    ),
    # Added for issue 16's "8 new real samples" (logs/tegrastats/SOURCES.md, last table).
    # Every line quoted with "> " in the issue; IRAM, NVDEC and VIC_FREQ fields, which are no figure here.
    "nano_r32_quoted_iram_nvdec_jetson_inference_issue1206.txt": dict(
        timestamp=None, ram_used_mb=1501, ram_total_mb=3956, swap_used_mb=None,
        cpus=cpus("16%@1479,13%@1479,10%@1479,4%@1479"), emc_load_pct=4, emc_freq_mhz=1600, gpu_load_pct=28,
        gpu_freq_mhz=76, temps_c={"PLL": 39.0, "CPU": 44.0, "PMIC": 100.0, "GPU": 41.5, "AO": 47.5, "thermal": 42.5},
        rails_mw=rails(POM_5V_IN=(4122, 3107), POM_5V_GPU=(109, 85), POM_5V_CPU=(1167, 748)),
    ),
    "tx2_jp33_old_rails_tf_trt_models_issue13.txt": dict(
        timestamp=None, ram_used_mb=4167, ram_total_mb=7854, swap_used_mb=None,
        cpus=cpus("49%@2035,0%@2035,0%@2035,44%@2035,47%@2032,38%@2035"), emc_load_pct=7, emc_freq_mhz=1866,
        gpu_load_pct=18, gpu_freq_mhz=1300,
        temps_c={"BCPU": 48.0, "MCPU": 48.0, "GPU": 47.5, "PLL": 48.0, "Tboard": 41.0, "Tdiode": 46.25, "PMIC": 100.0,
                 "thermal": 48.3},
        rails_mw=rails(VDD_IN=(7862, 4839), VDD_CPU=(1763, 820), VDD_GPU=(2531, 947), VDD_SOC=(997, 929),
                       VDD_WIFI=(0, 33), VDD_DDR=(1626, 1271)),
    ),
    # L4T R24 (TX1): "cpu [..]@MHz", AVP, NVDEC, MSENC and "EDP limit" fields.
    "tx1_r24_avp_nvdec_msenc_edp_gtop_tegrastats_fake_comment.txt": dict(
        timestamp=None, ram_used_mb=1104, ram_total_mb=3995, swap_used_mb=None, cpus=cpus("2%@1734,5%@1734,8%@1734,11%@1734"),
        emc_load_pct=0, emc_freq_mhz=1600, gpu_load_pct=0, gpu_freq_mhz=998, temps_c=None, rails_mw=None,
    ),
    "tx2_4gb_r32_sys_rails_zabbix_plugin_stats_test.txt": dict(
        timestamp=None, ram_used_mb=1873, ram_total_mb=3830, swap_used_mb=None,
        cpus=cpus("8%@2016,26%@2034,24%@2035,7%@2026,7%@2034,6%@2034"), emc_load_pct=0, emc_freq_mhz=1600,
        gpu_load_pct=0, gpu_freq_mhz=114,
        temps_c={"PLL": 39.0, "MCPU": 39.0, "PMIC": 50.0, "Tboard": 35.0, "GPU": 37.0, "BCPU": 39.0, "thermal": 38.5,
                 "Tdiode": 37.0},
        rails_mw=rails(VDD_SYS_GPU=(77, 77), VDD_SYS_SOC=(539, 539), VDD_IN=(2930, 3405), VDD_SYS_CPU=(539, 937),
                       VDD_SYS_DDR=(727, 758)),
    ),
    # A `date` line, then one line each from four boards (TX2, TX1, TX2 in an old release, AGX Xavier).
    "date_line_then_four_boards_ssaraff98_sample_log.txt": dict(
        timestamp=None, ram_used_mb=1404, ram_total_mb=7860, swap_used_mb=0,
        cpus=cpus("0%@345,0%@960,0%@960,0%@345,0%@345,0%@345"), emc_load_pct=0, emc_freq_mhz=None, gpu_load_pct=0,
        gpu_freq_mhz=None,
        temps_c={"PLL": 35.5, "MCPU": 35.5, "PMIC": 100.0, "Tboard": 30.0, "GPU": 32.0, "BCPU": 35.5, "thermal": 34.1,
                 "Tdiode": 31.5},
        rails_mw=rails(VDD_SYS_GPU=(153, 153), VDD_SYS_SOC=(306, 306), VDD_4V0_WIFI=(0, 0), VDD_IN=(1649, 1649),
                       VDD_SYS_CPU=(306, 306), VDD_SYS_DDR=(173, 173)),
    ),
    # L4T R36 on AGX Orin 64 GB: lower-case sensor names, NVDLA0/1 and PVA0_FREQ "off", GPC clocks "@[305,305]".
    "agx_orin_r36_lowercase_sensors_nvdla_abdel_e_parser_log_first5.txt": dict(
        timestamp="10-26-2025 05:10:54", ram_used_mb=6879, ram_total_mb=62841, swap_used_mb=0,
        cpus=cpus("5%@729,1%@729,0%@729,9%@729,1%@729,3%@729,5%@729,0%@729,3%@729,1%@729,1%@729,7%@729"),
        emc_load_pct=0, emc_freq_mhz=2133, gpu_load_pct=0, gpu_freq_mhz=305,
        temps_c={"cpu": 47.687, "tboard": 36.75, "soc2": 44.312, "tdiode": 37.5, "soc0": 45.718, "gpu": 43.218,
                 "tj": 47.687, "soc1": 45.125},
        rails_mw=rails(VDD_GPU_SOC=(2801, 2801), VDD_CPU_CV=(400, 400), VIN_SYS_5V0=(4536, 4536),
                       VDDQ_VDD2_1V8AO=(604, 604)),
    ),
}

LINE_COUNTS = {
    "tx1_r24_legacy_avp_vde_edp_sudo_prompt_blog_573.txt": 2,
    "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_a5a5cc7.txt": 2,
    "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_ae7da25.txt": 2,
    "tx2_r28_2_gustavz_issue24.txt": 3,
    "tx2_jp46_nonroot_jetson_stats_issue187.txt": 6,
    "agx_orin_r36_4_4_tegra_exporter.txt": 3,
    "thor_r38_4_tegra_exporter.txt": 3,
    "thor_r39_2_tegra_exporter.txt": 2,
    "nano_r32_quoted_iram_nvdec_jetson_inference_issue1206.txt": 4,
    "date_line_then_four_boards_ssaraff98_sample_log.txt": 4,
    "agx_orin_r36_lowercase_sensors_nvdla_abdel_e_parser_log_first5.txt": 5,
}


def test_every_fixture_has_an_expectation():
    assert {path.name for path in LOGS.glob("*.txt")} == set(FIRST_LINES)


@pytest.mark.parametrize("name", sorted(FIRST_LINES))
def test_first_line_exact(name):
    samples = parse((LOGS / name).read_text())
    assert len(samples) == LINE_COUNTS.get(name, 1)
    assert all(isinstance(sample, TegrastatsSample) for sample in samples)
    first = samples[0].to_dict()
    assert set(first) == SAMPLE_KEYS
    assert first == FIRST_LINES[name]


def test_key_sets_of_nested_objects():
    sample = parse((LOGS / "tx2_r32_datadog_agent.txt").read_text())[0].to_dict()
    assert set(sample["cpus"][0]) == {"load_pct", "freq_mhz"}
    assert set(sample["rails_mw"]["VDD_IN"]) == {"cur", "avg"}


def test_later_lines_follow_the_file():
    gustavz = parse((LOGS / "tx2_r28_2_gustavz_issue24.txt").read_text())
    # The second and third lines differ from the first in CPU clocks, EMC clock and averages.
    assert [s.emc_freq_mhz for s in gustavz] == [1866, 102, 102]
    assert [s.emc_load_pct for s in gustavz] == [0, 16, 16]
    assert [s.rails_mw["VDD_IN"].avg for s in gustavz] == [1931, 1853, 1815]
    assert gustavz[2].temps_c["BCPU"] == 40.5
    assert gustavz[1].cpus[1].freq_mhz == 344

    thor = parse((LOGS / "thor_r39_2_tegra_exporter.txt").read_text())
    # JetPack 7 prints cur/avg/max: the second figure is the average, not the maximum.
    assert (thor[1].rails_mw["VDD_CPU_SOC_MSS"].cur, thor[1].rails_mw["VDD_CPU_SOC_MSS"].avg) == (7953, 8332)
    # "cpu@34.312C/34.843C": the current reading, not the maximum.
    assert thor[1].temps_c["cpu"] == 34.312

    orin = parse((LOGS / "agx_orin_r36_4_4_tegra_exporter.txt").read_text())
    assert [s.timestamp for s in orin] == ["05-09-2026 18:42:06", "05-09-2026 18:42:07", "05-09-2026 18:42:08"]
    assert [s.rails_mw["VIN_SYS_5V0"].avg for s in orin] == [4707, 4657, 4674]


def test_non_tegrastats_lines_are_skipped():
    text = "catid@orin:~$ sudo tegrastats\n\n" + (LOGS / "tx2_r32_datadog_agent.txt").read_text()
    assert len(parse(text)) == 1
    assert parse_line("catid@orin:~$ sudo tegrastats") is None


LAYOUTS = {
    "L4T R24-R28.1": ["tx1_r24_legacy_avp_vde_edp_sudo_prompt_blog_573.txt",
                      "tx1_r24_avp_nvdec_msenc_edp_gtop_tegrastats_fake_comment.txt",
                      "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_a5a5cc7.txt",
                      "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_ae7da25.txt"],
    "L4T R28.2-R32": ["tx1_r28_datadog_agent.txt", "tx2_r28_2_gustavz_issue24.txt", "tx2_r32_datadog_agent.txt",
                      "tx2_r32_findhao_txutils_issue3.txt", "tx2_jp46_nonroot_jetson_stats_issue187.txt",
                      "nano_r32_datadog_agent.txt", "agx_xavier_jp42_gtop_pr7.txt", "agx_xavier_r32_datadog_agent.txt",
                      "xavier_nx_r32_datadog_agent.txt", "nano_r32_quoted_iram_nvdec_jetson_inference_issue1206.txt",
                      "tx2_jp33_old_rails_tf_trt_models_issue13.txt", "tx2_4gb_r32_sys_rails_zabbix_plugin_stats_test.txt",
                      "date_line_then_four_boards_ssaraff98_sample_log.txt"],
    "L4T R35 and later": ["agx_orin_jp51_catid_blog.txt", "agx_orin_jp6_gpc_list_jetson_exporter_issue14.txt",
                          "agx_orin_no_emc_datadog_agent.txt", "agx_orin_r36_4_4_tegra_exporter.txt",
                          "agx_orin_r36_spaced_datadog_agent.txt", "orin_16gb_mw_units_datadog_agent.txt",
                          "orin_nano_jp6_jetson_stats_issue624.txt", "thor_r38_4_tegra_exporter.txt",
                          "agx_orin_r36_lowercase_sensors_nvdla_abdel_e_parser_log_first5.txt"],
    "L4T R39": ["agx_orin_r39_2_off_cores_tegra_exporter.txt", "thor_r39_2_tegra_exporter.txt"],
}


def test_every_fixture_has_a_layout():
    assert sorted(name for names in LAYOUTS.values() for name in names) == sorted(FIRST_LINES)


@pytest.mark.parametrize("layout, name", [(layout, name) for layout, names in LAYOUTS.items() for name in names])
def test_each_sample_says_which_layout_it_is(layout, name):
    assert {invocation.format.split(" layout")[0] for invocation in invocations((LOGS / name).read_text())} == {
        f"tegrastats, {layout}"}


def test_the_pasted_command_goes_with_the_samples_after_it():
    found = list(invocations((LOGS / "tx1_r24_legacy_avp_vde_edp_sudo_prompt_blog_573.txt").read_text()))
    # "sudo ~/tegrastats", then the sudo password prompt, then two samples.
    assert [(i.number, i.first_line, i.command) for i in found] == [(1, 3, "sudo ~/tegrastats"),
                                                                   (1, 4, "sudo ~/tegrastats")]


def test_two_pasted_runs_are_two_invocations():
    first = (LOGS / "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_ae7da25.txt").read_text()
    second = (LOGS / "tx1_r28_1_legacy_indented_prompt_hordiales_scripts_a5a5cc7.txt").read_text()
    found = list(invocations(first + second))
    assert [i.number for i in found] == [1, 1, 2, 2]
    assert [s.ram_used_mb for s in parse(first + second)] == [3691, 3691, 3468, 3607]


def test_later_lines_of_the_new_samples():
    nano = parse((LOGS / "nano_r32_quoted_iram_nvdec_jetson_inference_issue1206.txt").read_text())
    # detectnet warming up the GPU: 28% at 76 MHz, then 86% and 99% at 921 MHz.
    assert [(s.gpu_load_pct, s.gpu_freq_mhz) for s in nano] == [(28, 76), (86, 921), (99, 921), (99, 921)]
    assert [s.rails_mw["POM_5V_IN"].avg for s in nano] == [3107, 3285, 3422, 3533]

    boards = parse((LOGS / "date_line_then_four_boards_ssaraff98_sample_log.txt").read_text())
    assert [s.ram_total_mb for s in boards] == [7860, 3983, 7829, 15692]
    # The third board: five of six cores off, EMC at 40 MHz.
    assert [c is None for c in boards[2].cpus] == [False, True, True, True, True, True]
    assert (boards[2].emc_load_pct, boards[2].emc_freq_mhz, boards[2].rails_mw["VDD_WIFI"].cur) == (13, 40, 0)
    assert boards[3].rails_mw["SYS5V"].avg == 1889 and boards[3].temps_c["AUX"] == 31.5

    orin = parse((LOGS / "agx_orin_r36_lowercase_sensors_nvdla_abdel_e_parser_log_first5.txt").read_text())
    assert [s.gpu_load_pct for s in orin] == [0, 0, 40, 0, 0]
    assert [s.rails_mw["VIN_SYS_5V0"].avg for s in orin] == [4536, 4586, 4636, 4661, 4656]
