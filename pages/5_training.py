"""Lesson 5: Training lab."""
import streamlit as st

import ui

ui.page_setup()
ui.lesson_header(5, "Training lab", "This lesson is being built.")
